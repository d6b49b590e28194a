"""Neuroglancer served by the game itself: its client, the volumes as precomputed data, and the links in.

Nothing leaves the server: the client comes from the installed ``neuroglancer``
package, every data source is under ``/neuroglancer/data/``. Players see the
image and the automatic segmentation (before any edit: the edited ones hold
secret gold answers), of a puzzle they have answered or a practice puzzle;
admins see everything, the edits and the truth included.
"""

from __future__ import annotations

import gzip

from flask import Blueprint, Response, jsonify, redirect, render_template, request, send_file

from game.app import neuroglancer as ng
from game.app import store as st
from game.errors import ProofQuestError

from . import game_instance
from .auth import current_player, login_required, role_required

bp = Blueprint("viewer", __name__, url_prefix="/neuroglancer")

# The client compiles WebAssembly and starts web workers from its own files; it sets element styles itself.
CSP = ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; "
       "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'self'")


def _cache() -> ng.ViewerCache:
    inst = game_instance()
    if inst.viewer_cache is None:
        inst.viewer_cache = ng.ViewerCache()
    return inst.viewer_cache


def _binary(data: bytes, mimetype: str = "application/octet-stream") -> Response:
    response = Response(data, mimetype=mimetype)
    if "gzip" in request.headers.get("Accept-Encoding", ""):  # labels compress tenfold and more
        response.set_data(gzip.compress(data, compresslevel=1))
        response.headers["Content-Encoding"] = "gzip"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


def _readable(layer: str) -> None:
    if not ng.may_read(current_player()["role"], layer):
        raise ProofQuestError(f"the {layer} layer is for admins")


# ----------------------------------------------------------------------------- the client

@bp.get("/v/<token>/")
@login_required
def page(token: str):
    folder = ng.client_folder()
    if folder is None:
        return render_template("neuroglancer_missing.html"), 503
    response = Response(render_template("neuroglancer.html", assets=ng.client_assets(folder)))
    response.headers["Content-Security-Policy"] = CSP
    return response


@bp.get("/client/<name>")
def client(name: str):
    folder = ng.client_folder()
    if folder is None:
        raise ProofQuestError("Neuroglancer is not installed: pip install --no-deps neuroglancer")
    path = ng.client_file(folder, name)
    mimetype = "application/wasm" if name.endswith(".wasm") else None
    return send_file(path, mimetype=mimetype, max_age=7 * 24 * 3600)


# ----------------------------------------------------------------------------- data (precomputed)

@bp.get("/data/<volume>/<layer>/info")
@login_required
def info(volume: str, layer: str):
    _readable(layer)
    response = jsonify(ng.info(game_instance(), _cache(), volume, layer))
    response.headers["Cache-Control"] = "private, max-age=60"
    return response


@bp.get(f"/data/<volume>/<layer>/{ng.SCALE_KEY}/<key>")
@login_required
def chunk(volume: str, layer: str, key: str):
    _readable(layer)
    return _binary(ng.chunk(game_instance(), _cache(), volume, layer, key))


@bp.get("/data/<volume>/<layer>/mesh/<name>")
@login_required
def mesh(volume: str, layer: str, name: str):
    _readable(layer)
    if name == "info":
        return jsonify({"@type": "neuroglancer_legacy_mesh"})
    parts = name.split(":")
    if not parts[0].isdigit() or len(parts[0]) > 19 or len(parts) not in (2, 3):
        raise ProofQuestError(f"{name!r} is not a mesh name (SEGMENT:0 or SEGMENT:0:whole)")
    if len(parts) == 2:
        return jsonify(ng.mesh_manifest(int(parts[0])))
    return _binary(ng.mesh_fragment(game_instance(), _cache(), volume, layer, int(parts[0])))


# ----------------------------------------------------------------------------- links in

@bp.get("/puzzle/<id:puzzle_id>")
@login_required
def puzzle(puzzle_id: int):
    """A puzzle in Neuroglancer: for its players once they answered, for anyone if it is a practice puzzle."""
    inst, player = game_instance(), current_player()
    found = st.puzzle(inst.store, puzzle_id) if puzzle_id < 2**63 else None
    allowed = found is not None and (player["role"] == "admin" or found["tutorial"]
                                     or st.has_voted(inst.store, puzzle_id, player["id"]))
    if not allowed:
        raise ProofQuestError(f"puzzle {puzzle_id} opens in Neuroglancer once you have answered it")
    return redirect(ng.viewer_url(request.url_root, ng.puzzle_view(inst, request.url_root, found, cache=_cache(),
                                                                    role=player["role"])))


@bp.get("/edit/<volume>/<id:seq>")
@role_required("admin")
def edit(volume: str, seq: int):
    """An edit of the log, before and after, in Neuroglancer."""
    return redirect(ng.viewer_url(request.url_root, ng.edit_view(game_instance(), request.url_root, volume, seq)))
