"""Admin: volumes in (import, live), data out (exports), the edit log (revert, re-apply), players, quality.

Every route needs the admin role: under ``/admin/api/`` a refusal is JSON
(401 to log in, 403 for another role), elsewhere a page.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from werkzeug.utils import secure_filename

from game.app import catalog, editlog, exports, intake, timeline
from game.app import store as st
from game.crowd import audit, reports, settled, votes
from game.errors import ProofQuestError
from game.volumes.formats import EXPORT_FORMATS

from . import game_instance
from . import validate as v
from .auth import current_player, role_required, wants_json

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _body():
    return v.fields()


def _download(download: exports.Download) -> Response:
    response = Response(stream_with_context(download.chunks), mimetype=download.mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{download.filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


# ----------------------------------------------------------------------------- pages

@bp.get("/")
@role_required("admin")
def dashboard():
    inst = game_instance()
    return render_template("admin.html", quality=reports.quality_report(inst), queue=votes.expert_queue(inst),
                           gold_notes=settled.gold_notes(inst))


@bp.get("/volumes")
@role_required("admin")
def volumes_page():
    inst = game_instance()
    return render_template("admin_volumes.html", volumes=catalog.volumes(inst),
                           folders=intake.allowed_folders(inst), max_upload_mb=inst.settings["MAX_UPLOAD_MB"])


@bp.get("/volumes/<name>")
@role_required("admin")
def volume_page(name: str):
    inst = game_instance()
    row = next((v for v in catalog.volumes(inst) if v["name"] == name and not v.get("pending")), None)
    if row is None:
        abort(404)
    return render_template("admin_volume.html", volume=row, label_formats=EXPORT_FORMATS,
                           decided=st.decided_count(inst.store, name))


@bp.get("/volumes/<name>/edits")
@role_required("admin")
def edits_page(name: str):
    inst = game_instance()
    if not inst.volumes.exists(name):
        abort(404)
    return render_template("admin_edits.html", name=name, edits=editlog.log(inst, name))


@bp.get("/players")
@role_required("admin")
def players_page():
    inst = game_instance()
    return render_template("admin_players.html", players=audit.player_report(inst),
                           fast_ms=inst.settings["FAST_ANSWER_MS"])


# ----------------------------------------------------------------------------- downloads

@bp.get("/export/<name>/<what>")
@role_required("admin")
def export(name: str, what: str):
    """A download: ``labels?format=h5|tif|npy|zarr[&at=EDITS]`` or ``votes|edits|puzzles|answers?format=csv|jsonl``."""
    inst, fmt = game_instance(), request.args.get("format", "")
    if what == "labels":
        at = request.args.get("at", "").strip()
        if at and not at.isdigit():
            raise ProofQuestError(f"at={at[:20]!r}: give a number of edits (0 is the automatic segmentation)")
        return _download(exports.labels_download(inst, name, fmt, at=int(at) if at else None))
    if what not in exports.WHAT:
        raise ProofQuestError(f"cannot export {what!r}; choose labels, votes, edits, puzzles or answers")
    return _download(exports.rows_download(inst, name, what, fmt or "csv"))


# ----------------------------------------------------------------------------- JSON API

@bp.get("/api/quality")
@role_required("admin")
def quality():
    return jsonify(ok=True, volumes=reports.quality_report(game_instance()))


@bp.get("/api/expert")
@role_required("admin")
def expert_queue():
    return jsonify(ok=True, puzzles=votes.expert_queue(game_instance()))


@bp.post("/api/expert/<id:puzzle_id>")
@role_required("admin")
def expert_decide(puzzle_id: int):
    decision = v.choice(v.fields().get("decision"), "decision", ("apply", "reject"))
    outcome = votes.expert_decide(game_instance(), current_player()["id"], puzzle_id, decision)
    return jsonify(ok=True, **outcome)


@bp.get("/api/volumes")
@role_required("admin")
def volumes():
    return jsonify(ok=True, volumes=catalog.volumes(game_instance()))


@bp.post("/api/volumes/<name>/live")
@role_required("admin")
def set_live(name: str):
    return jsonify(ok=True, **catalog.set_live(game_instance(), name, _body().get("live")))


def _resolution(text) -> tuple:
    values = text if isinstance(text, list) else str(text or "1,1,1").replace("x", ",").split(",")
    try:
        return tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ProofQuestError(f"resolution {str(text)[:40]!r}: give three voxel sizes Z,Y,X in nm, e.g. 40,4,4") \
            from None


@bp.post("/api/volumes/import")
@role_required("admin")
def import_volume():
    """A server-side path per layer (JSON or form fields), or uploaded files (multipart, one per layer)."""
    inst = game_instance()
    body = _body()
    name, resolution = body.get("name", ""), _resolution(body.get("resolution"))
    if not isinstance(name, str):
        raise ProofQuestError("name the new volume: letters, digits, '-', '_' and '.'")
    uploads = {layer: request.files[layer] for layer in intake.LAYERS
               if layer in request.files and request.files[layer].filename}
    if uploads:
        folder, specs = intake.save_uploads(inst, {
            layer: (secure_filename(f.filename), f.save) for layer, f in uploads.items()})
        for layer, spec in specs.items():
            dataset = str(body.get(f"{layer}_dataset", "")).strip()
            specs[layer] = f"{spec}:{dataset}" if dataset else spec
        intake.start_import(inst, name, specs, resolution, uploaded=folder)
    else:
        paths = {layer: body.get(layer) for layer in intake.LAYERS if body.get(layer)}
        intake.start_import(inst, name, intake.server_specs(inst, paths), resolution)
    return jsonify(ok=True, job=intake.job_name(name)), 202


@bp.get("/api/jobs")
@role_required("admin")
def jobs():
    return jsonify(ok=True, jobs=st.jobs(game_instance().store))


@bp.get("/api/volumes/<name>/timeline")
@role_required("admin")
def volume_timeline(name: str):
    inst = game_instance()
    return jsonify(ok=True, quality=timeline.quality_over_time(inst, name), activity=timeline.activity(inst, name))


@bp.get("/api/volumes/<name>/edits")
@role_required("admin")
def edit_log(name: str):
    return jsonify(ok=True, edits=editlog.log(game_instance(), name))


@bp.post("/api/volumes/<name>/edits/<id:seq>/<action>")
@role_required("admin")
def toggle_edit(name: str, seq: int, action: str):
    if action not in ("revert", "reapply"):
        abort(404)
    outcome = editlog.toggle(game_instance(), current_player()["id"], name, seq, revert=action == "revert")
    return jsonify(ok=True, **outcome)


@bp.get("/api/players")
@role_required("admin")
def players():
    return jsonify(ok=True, players=audit.player_report(game_instance()))


@bp.post("/api/players/<id:player_id>/suspend")
@role_required("admin")
def suspend(player_id: int):
    player = audit.suspend(game_instance(), current_player()["id"], player_id, _body().get("suspended"))
    return jsonify(ok=True, player=player)


ROLES = ("player", "teacher", "admin")


@bp.post("/api/role")
@role_required("admin")
def grant_role():
    """Give a registered player a role (teacher, admin, or back to player)."""
    try:
        body = v.fields()
        username, role = body.get("username"), body.get("role")
        if role not in ROLES:
            raise ProofQuestError(f"role is one of {', '.join(ROLES)}")
        if not isinstance(username, str) or not username.strip():
            raise ProofQuestError("name the player to give the role to")
        credentials = st.player_credentials(game_instance().store, username.strip())
        if credentials is not None and credentials["is_guest"]:
            raise ProofQuestError(f"{username.strip()!r} is a guest or a student: only registered players get a role")
        row = st.set_role(game_instance().store, username.strip(), role)
    except ProofQuestError as exc:
        if wants_json():
            return jsonify(ok=False, error=str(exc)), 400
        flash(str(exc), "error")
        return redirect(url_for("admin.dashboard"))
    if wants_json():
        return jsonify(ok=True, player={k: row[k] for k in ("id", "username", "role")})
    flash(f"{row['username']} is now {'an' if role == 'admin' else 'a'} {role}.", "info")
    return redirect(url_for("admin.dashboard"))
