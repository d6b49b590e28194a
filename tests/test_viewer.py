"""Neuroglancer served by the game: precomputed data that equal the volume, who may see what, links in."""

import gzip
import json
import urllib.parse

import numpy as np
import pytest
from conftest import oracle_puzzles, vote

from game.app import neuroglancer as ng
from game.app import players
from game.app import store as st
from game.web import create_app


def _token(client):
    return client.get("/auth/csrf").get_json()["csrf_token"]


def _client(app, role=None):
    client = app.test_client()
    store = app.extensions["proofquest"].store
    if role is None:
        client.post("/auth/guest", headers={"X-CSRFToken": _token(client), "Accept": "application/json"})
    else:
        players.register(store, f"user-{role}", "long password", role=role)
        client.post("/auth/login", json={"username": f"user-{role}", "password": "long password"},
                    headers={"X-CSRFToken": _token(client)})
    return client


@pytest.fixture
def app(inst):
    st.set_job(inst.store, "prepare", "done", 3, 3, "ready")
    return create_app({"TESTING": True}, instance=inst)


def _chunk(client, layer, key):
    reply = client.get(f"/neuroglancer/data/demo/{layer}/{ng.SCALE_KEY}/{key}", headers={"Accept-Encoding": "gzip"})
    assert reply.status_code == 200, reply.get_data(as_text=True)
    data = gzip.decompress(reply.data) if reply.headers.get("Content-Encoding") == "gzip" else reply.data
    return data


def test_precomputed_chunks_are_the_volume_and_the_segmentation_after_any_edit(app, inst):
    admin = _client(app, "admin")
    volume = inst.volumes.open("demo")
    agg = inst.agglomeration("demo")
    a, b = agg.segments()[:2]
    edit = agg.merge(int(a), int(b))
    st.append_edit(inst.store, "demo", edit.to_dict(), author="test")
    info = admin.get("/neuroglancer/data/demo/segmentation-1/info").get_json()
    z, y, x = volume.shape
    assert info["type"] == "segmentation" and info["scales"][0]["size"] == [x, y, z]
    assert info["scales"][0]["resolution"] == [6.0, 6.0, 30.0] and info["data_type"] == "uint32"
    cz, cy, cx = (min(c, n) for c, n in zip(volume.chunks, volume.shape))
    assert info["scales"][0]["chunk_sizes"] == [[cx, cy, cz]]
    key = f"0-{cx}_0-{cy}_0-{cz}"
    box = (slice(0, cz), slice(0, cy), slice(0, cx))
    supervoxels = volume.read("supervoxels")[box]
    for at, mapping in ((0, volume.load_side("mapping")), (1, agg.mapping)):
        # raw encoding: x fastest, so the bytes of a C-order (z, y, x) block
        got = np.frombuffer(_chunk(admin, f"segmentation-{at}", key), "<u4").reshape(supervoxels.shape)
        np.testing.assert_array_equal(got, np.take(mapping, supervoxels))
    image = np.frombuffer(_chunk(admin, "image", key), np.uint8).reshape(supervoxels.shape)
    np.testing.assert_array_equal(image, volume.read("image")[box])
    assert admin.get("/neuroglancer/data/demo/image/info").get_json()["type"] == "image"
    for bad in ("0-5_0-5_0-5", f"1-{cx + 1}_0-{cy}_0-{cz}", "../../secret_key"):
        assert admin.get(f"/neuroglancer/data/demo/image/{ng.SCALE_KEY}/{bad}").status_code in (400, 404)
    assert admin.get("/neuroglancer/data/demo/segmentation-9/info").status_code == 400
    assert admin.get("/neuroglancer/data/demo/secrets/info").status_code == 400


def test_meshes_are_legacy_precomputed_fragments_of_the_segment(app, inst):
    admin = _client(app, "admin")
    agg = inst.agglomeration("demo")
    segment = int(agg.segments()[0])
    assert admin.get("/neuroglancer/data/demo/segmentation-0/mesh/info").get_json() == {
        "@type": "neuroglancer_legacy_mesh"}
    manifest = admin.get(f"/neuroglancer/data/demo/segmentation-0/mesh/{segment}:0").get_json()
    data = admin.get(f"/neuroglancer/data/demo/segmentation-0/mesh/{manifest['fragments'][0]}").data
    data = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    n = int(np.frombuffer(data[:4], "<u4")[0])
    vertices = np.frombuffer(data[4:4 + 12 * n], "<f4").reshape(n, 3)
    triangles = np.frombuffer(data[4 + 12 * n:], "<u4").reshape(-1, 3)
    assert n > 0 and len(triangles) > 0 and triangles.max() < n
    volume = inst.volumes.open("demo")
    where = np.argwhere(np.isin(volume.read("supervoxels"), agg.members(segment)))  # z, y, x voxels
    low, high = where.min(axis=0), where.max(axis=0) + 1
    nm = np.array(volume.resolution)
    assert (vertices[:, ::-1] >= (low - 1) * nm - 1e-3).all() and (vertices[:, ::-1] <= (high + 1) * nm + 1e-3).all()


def test_players_see_the_image_and_segmentation_but_not_the_truth(app):
    guest, admin = _client(app), _client(app, "admin")
    assert guest.get("/neuroglancer/data/demo/image/info").status_code == 200
    assert guest.get("/neuroglancer/data/demo/segmentation-0/info").status_code == 200
    assert guest.get("/neuroglancer/data/demo/truth/info").status_code == 400
    assert guest.get(f"/neuroglancer/data/demo/truth/{ng.SCALE_KEY}/0-96_0-96_0-16").status_code == 400
    assert guest.get("/neuroglancer/data/demo/truth/mesh/5:0:whole").status_code == 400
    assert admin.get("/neuroglancer/data/demo/truth/info").status_code == 200
    assert app.test_client().get("/neuroglancer/data/demo/image/info").status_code in (302, 401)


def _state(reply):
    assert reply.status_code == 302, reply.get_data(as_text=True)
    location = reply.headers["Location"]
    page, _, fragment = location.partition("#!")
    assert page.endswith(f"/neuroglancer/v/{ng.VIEW_TOKEN}/")
    return json.loads(urllib.parse.unquote(fragment))


def test_a_puzzle_opens_in_neuroglancer_once_answered_with_its_segments_selected(app, inst):
    ids, puzzles = oracle_puzzles(inst)
    pid, puzzle = next((i, p) for i, p in zip(ids, puzzles) if p["kind"] == "merge")
    guest = _client(app)
    assert guest.get(f"/neuroglancer/puzzle/{pid}").status_code == 400  # not before answering it
    me = guest.get("/api/me").get_json()["player"]
    vote(inst, me["id"], pid, "unsure", 900)
    state = _state(guest.get(f"/neuroglancer/puzzle/{pid}"))
    agg = inst.agglomeration("demo")
    layers = {layer["name"]: layer for layer in state["layers"]}
    assert set(layers) == {"EM", "segmentation"}  # no truth for players
    assert sorted(layers["segmentation"]["segments"]) == sorted(str(agg.segment_of(a)) for a in puzzle["anchors"])
    assert layers["segmentation"]["source"].endswith("/segmentation-0")
    assert all(layer["source"].startswith("precomputed://http://localhost/neuroglancer/data/demo/")
               for layer in state["layers"])
    z, y, x = puzzle["location"]
    assert state["position"] == [x + 0.5, y + 0.5, z + 0.5]
    assert "truth" in {layer["name"] for layer in _state(_client(app, "admin").get(
        f"/neuroglancer/puzzle/{pid}"))["layers"]}


def test_a_practice_puzzle_opens_for_anyone_logged_in(app, inst):
    ids, puzzles = oracle_puzzles(inst)
    practice = st.add_puzzles(inst.store, "demo", [{**puzzles[0], "tutorial": True, "gold": False}])[0]
    assert _state(_client(app).get(f"/neuroglancer/puzzle/{practice}"))["layers"][0]["name"] == "EM"


def test_an_edit_opens_before_and_after_for_admins(app, inst):
    agg = inst.agglomeration("demo")
    a, b = (int(s) for s in agg.segments()[:2])
    st.append_edit(inst.store, "demo", agg.merge(a, b).to_dict(), author="test")
    state = _state(_client(app, "admin").get("/neuroglancer/edit/demo/0"))
    sources = {layer["name"]: layer["source"].rsplit("/", 1)[1] for layer in state["layers"]}
    assert sources == {"EM": "image", "truth": "truth", "before #0": "segmentation-0", "after #0": "segmentation-1"}
    assert sorted(state["layers"][-1]["segments"]) == sorted([str(a), str(b)])


def test_the_viewer_page_loads_the_installed_client_with_the_offline_shim_first(app):
    if ng.client_folder() is None:
        pytest.skip("the neuroglancer package is not installed (pip install --no-deps neuroglancer)")
    guest = _client(app)
    page = guest.get(f"/neuroglancer/v/{ng.VIEW_TOKEN}/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "wasm-unsafe-eval" in page.headers["Content-Security-Policy"]
    assert html.index("neuroglancer-offline.js") < html.index("/neuroglancer/client/")
    scripts = ng.client_assets(ng.client_folder())["scripts"]
    assert scripts and all(f"/neuroglancer/client/{s}" in html for s in scripts)
    with guest.get(f"/neuroglancer/client/{scripts[-1]}") as client_js:
        assert client_js.status_code == 200 and len(client_js.data) > 100_000
    assert guest.get("/neuroglancer/client/..%2F__init__.py").status_code in (400, 404)


def test_a_gold_puzzles_view_tells_a_player_neither_its_answer_nor_that_it_is_gold(app, inst):
    from game.crowd.votes import apply_known_answers
    ids, puzzles = oracle_puzzles(inst, n_merge=24, n_split=0, gold_every=3)
    rows = [st.puzzle(inst.store, i) for i in ids]
    gold = next(p for p in rows if p["gold"] and p["truth"])  # a right merge, applied once its answer is known
    crowd = next(p for p in rows if not p["gold"])  # a crowd puzzle
    initial = inst.volumes.open("demo").load_side("mapping")  # before any edit
    assert apply_known_answers(inst, "demo") > 0
    live = inst.agglomeration("demo")
    assert live.segment_of(gold["anchors"][0]) == live.segment_of(gold["anchors"][1])  # the live answer
    guest, admin = _client(app), _client(app, "admin")
    me = guest.get("/api/me").get_json()["player"]
    views = {}
    for p in (gold, crowd):
        vote(inst, me["id"], p["id"], "unsure", 900)
        views[p["id"]] = {layer["name"]: layer for layer in _state(guest.get(f"/neuroglancer/puzzle/{p['id']}"))["layers"]}
    for p in (gold, crowd):  # both: the automatic segmentation, the two parts apart as they were asked about
        seg = views[p["id"]]["segmentation"]
        assert seg["source"].endswith("/segmentation-0")
        assert sorted(seg["segments"]) == sorted({str(initial[a]) for a in p["anchors"]})
        assert len(seg["segments"]) == 2
    # before the fix: the live segmentation, one segment selected for a right gold merge and two for a wrong one
    admins = {layer["name"]: layer for layer in _state(admin.get(f"/neuroglancer/puzzle/{gold['id']}"))["layers"]}
    assert admins["segmentation"]["segments"] == [str(live.segment_of(gold["anchors"][0]))]
    # and no edited segmentation is served to players, where the answer could be read at the puzzle's place
    at = len(live.edits)
    for path in (f"segmentation-{at}/info", f"segmentation-1/{ng.SCALE_KEY}/0-96_0-96_0-16",
                 f"segmentation-{at}/mesh/{live.segment_of(gold['anchors'][0])}:0:whole"):
        assert guest.get(f"/neuroglancer/data/demo/{path}").status_code == 400, path
        assert admin.get(f"/neuroglancer/data/demo/{path}").status_code in (200, 404), path
    assert guest.get("/neuroglancer/data/demo/segmentation-0/info").status_code == 200
