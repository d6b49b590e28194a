"""No waiting on pictures: drawn when the pool makes a puzzle, redrawn when its parts change, served immutable."""

import numpy as np
from conftest import oracle_puzzles, vote

from game.app import images, players
from game.app import store as st
from game.puzzles import render
from game.puzzles.cache import PuzzleImageCache, picture_key
from game.segmentation.rag import RAG
from game.web import create_app


def _cache(inst) -> PuzzleImageCache:
    return PuzzleImageCache(inst.cache_dir / "puzzles")


def _guest_with_a_puzzle(inst):
    """A test client logged in as a guest on a ready instance with oracle puzzles, and the puzzle it is handed."""
    oracle_puzzles(inst)
    st.set_job(inst.store, "prepare", "done", 3, 3, "ready")
    client = create_app({"TESTING": True}, instance=inst).test_client()
    token = client.get("/auth/csrf").get_json()["csrf_token"]
    client.post("/auth/guest", headers={"Accept": "application/json", "X-CSRFToken": token})
    return client, client.get("/api/puzzle/next").get_json()["puzzle"]


def test_the_pool_draws_every_crowd_puzzle_before_it_is_handed_out(inst):
    inst.settings.update(PRERENDER=True)
    inst.pool.prepare_volume("demo")
    agg = inst.agglomeration("demo")
    crowd = st.puzzles(inst.store, volume="demo", state="open", gold=False)
    assert crowd and all(_cache(inst).has(picture_key(p, agg, inst.picture_secret)) for p in crowd)


def test_an_edit_to_a_puzzles_part_gives_it_new_pictures_drawn_by_the_rescan(inst):
    inst.settings.update(PRERENDER=True)
    ids, _ = oracle_puzzles(inst, n_merge=4, n_split=0, gold_every=100)
    puzzle = st.puzzle(inst.store, ids[0])
    agg = inst.agglomeration("demo")
    before = picture_key(puzzle, agg, inst.picture_secret)
    first = agg.segment_of(puzzle["anchors"][0])
    # merge the first part with a neighbour that is not the puzzle's other part
    rag = RAG.from_arrays(inst.volumes.open("demo").load_side("rag"))
    mapping = agg.mapping
    other = agg.segment_of(puzzle["anchors"][1])
    edges = np.flatnonzero((mapping[rag.u] == first) & ~np.isin(mapping[rag.v], [first, other]))
    neighbour = int(mapping[rag.v[edges[0]]])
    with inst.store.write():
        seq = inst.segmentations.commit_edit("demo", agg.plan_merge(first, neighbour), author="test")
    after = picture_key(puzzle, inst.agglomeration("demo"), inst.picture_secret)
    assert after != before and not _cache(inst).has(after)
    inst.pool.after_decision("demo", {**puzzle, "kind": "merge"}, seq)
    assert _cache(inst).has(after)


def test_a_secret_gold_puzzles_picture_key_looks_like_any_other(inst):
    import re
    ids, _ = oracle_puzzles(inst, n_merge=8, n_split=2, gold_every=2)
    agg = inst.agglomeration("demo")
    rows = [st.puzzle(inst.store, i) for i in ids]
    keys = {bool(p["gold"]): set() for p in rows}
    for p in rows:
        keys[bool(p["gold"])].add(picture_key(p, agg, inst.picture_secret))
    shapes = {gold: {re.sub(r"[0-9a-f]", "h", re.sub(r"^[0-9]+", "N", k)) for k in found}
              for gold, found in keys.items()}
    assert shapes[True] == shapes[False]  # before: '<id>-r<version>' for gold, a digest after it for the rest
    assert len(keys[True] | keys[False]) == len(rows)
    # and the digest is keyed by the instance's secret: unkeyed, a player recomputed a gold puzzle's from its edit
    gold = next(p for p in rows if p["gold"])
    assert picture_key(gold, agg, inst.picture_secret) != picture_key(gold, agg) != picture_key(gold, agg, b"x")
    assert images.picture_key(inst, gold) == picture_key(gold, agg, inst.picture_secret)


def test_pictures_asked_for_by_their_key_are_immutable_and_others_revalidate(inst):
    client, puzzle = _guest_with_a_puzzle(inst)
    assert puzzle["picture"]
    def get(url, **headers):
        with client.get(url, headers=headers) as reply:
            return reply.status_code, reply.headers, reply.data

    status, headers, keyed = get(f"/puzzle-image/{puzzle['id']}/3/overlay.png?v={puzzle['picture']}")
    assert status == 200 and "immutable" in headers["Cache-Control"]
    status, headers, plain = get(f"/puzzle-image/{puzzle['id']}/3/overlay.png")
    assert headers["Cache-Control"] == "private, no-cache" and plain == keyed
    assert get(f"/puzzle-image/{puzzle['id']}/3/overlay.png", **{"If-None-Match": headers["ETag"]})[0] == 304
    # validated by the picture key alone: a file's time (known-answer puzzles' drawn first) tells nothing, sent
    # or asked about (before: 304 for a date after the file's, 200 before it)
    assert "Last-Modified" not in headers and puzzle["picture"] in headers["ETag"]
    url = f"/puzzle-image/{puzzle['id']}/3/overlay.png"
    for when in ("Sat, 01 Jan 2000 00:00:00 GMT", "Fri, 01 Jan 2100 00:00:00 GMT"):
        assert get(url, **{"If-Modified-Since": when})[0] == 200, when
        assert get(url, **{"If-Modified-Since": when, "If-None-Match": headers["ETag"]})[0] == 304, when
    stale = get(f"/puzzle-image/{puzzle['id']}/3/overlay.png?v={puzzle['id']}-000000000000")
    assert stale[1]["Cache-Control"] == "private, no-cache"


def test_pictures_drawn_by_an_older_renderer_are_drawn_again_never_served(inst, monkeypatch):
    oracle_puzzles(inst, teach=True)
    crowd = next(p["id"] for p in st.puzzles(inst.store, volume="demo", state="open", gold=False))
    teach = next(p["id"] for p in st.puzzles(inst.store, volume="demo", gold=True) if p["teach"])
    player = players.create_guest(inst.store)
    vote(inst, player["id"], teach, "yes")
    wanted = [(crowd, "overlay"), (crowd, "plain"), (teach, "overlay"), (teach, "truth")]
    client = create_app({"TESTING": True}, instance=inst).test_client()
    current = render.RENDERER_VERSION
    monkeypatch.setattr(render, "RENDERER_VERSION", current - 1)
    older = {want: images.puzzle_image(inst, want[0], 2, want[1], player_id=player["id"]) for want in wanted}
    for path, _ in older.values():
        path.write_bytes(b"a picture as the older renderer drew it")
    assert images.prerender(inst, [crowd, teach]) == 0  # all there under that version's keys
    monkeypatch.setattr(render, "RENDERER_VERSION", current)
    assert images.prerender(inst, [crowd, teach]) == 2
    for want, (old_path, old_key) in older.items():
        path, key = images.puzzle_image(inst, want[0], 2, want[1], player_id=player["id"])
        assert key != old_key and f"-r{current}" in key and old_key.replace(f"-r{current - 1}", f"-r{current}") == key
        assert path != old_path and path.read_bytes().startswith(b"\x89PNG")
    # the web: a page asking by the old key revalidates (and gets the new picture); the new key is immutable
    token = client.get("/auth/csrf").get_json()["csrf_token"]
    client.post("/auth/guest", headers={"Accept": "application/json", "X-CSRFToken": token})
    path, key = images.puzzle_image(inst, crowd, 2, "overlay")
    with client.get(f"/puzzle-image/{crowd}/2/overlay.png?v={older[crowd, 'overlay'][1]}") as reply:
        assert reply.headers["Cache-Control"] == "private, no-cache" and reply.data == path.read_bytes()
    with client.get(f"/puzzle-image/{crowd}/2/overlay.png?v={key}") as reply:
        assert "immutable" in reply.headers["Cache-Control"] and reply.data == path.read_bytes()


def test_a_known_answer_puzzle_whose_edit_was_applied_is_drawn_again_as_it_was_made(inst):
    """Known answers apply their puzzles' edits; drawn again later (a new renderer, a cleared cache) such a
    puzzle is drawn on the segmentation it was made on, as it was first drawn, not refused as settled."""
    import shutil

    from game.crowd import votes
    from game.puzzles.edit import Moot, PuzzleEdit

    oracle_puzzles(inst, teach=True)
    known = [p for p in st.puzzles(inst.store, volume="demo", gold=True) if p["truth"]]
    player = players.create_guest(inst.store)
    for p in known:
        vote(inst, player["id"], p["id"], "unsure")  # a teach puzzle's truth is shown once answered
    variants = [(p["id"], v) for p in known for v in ("overlay", "plain") + (("truth",) if p["teach"] else ())]
    first = {want: images.puzzle_image(inst, want[0], 2, want[1], player_id=player["id"])[0].read_bytes()
             for want in variants}
    assert votes.apply_known_answers(inst, "demo") >= len(known)
    applied = []
    for p in known:
        try:
            PuzzleEdit.of(p).parts(inst.agglomeration("demo"))
        except Moot:
            applied.append(p["id"])
    assert applied, "the known answers settled some of their own puzzles in the live segmentation"
    shutil.rmtree(inst.cache_dir / "puzzles")
    for want, picture in first.items():
        assert images.puzzle_image(inst, want[0], 2, want[1], player_id=player["id"])[0].read_bytes() == picture


def test_every_puzzle_is_drawn_centred_on_a_spot_of_the_border_between_its_parts(inst):
    """The spot the ticks mark is where the two parts meet (across sections: where one ends over the other's
    start), in the middle of the picture, even for a puzzle whose stored window lies against the volume's side."""
    from game.puzzles.edit import PuzzleEdit
    from game.puzzles.framing import OUT_SIZE, part_masks

    oracle_puzzles(inst)
    volume = inst.volumes.open("demo")
    agg = inst.agglomeration("demo")
    checked = 0
    for puzzle in st.puzzles(inst.store, volume="demo"):
        frame, a, b = images.drawn_parts(volume, images.puzzle_frame(inst, puzzle), PuzzleEdit.of(puzzle), agg)
        read = part_masks(volume.read("supervoxels", frame.box), PuzzleEdit.of(puzzle), agg)
        assert np.array_equal(a, read[0]) and np.array_equal(b, read[1])  # the parts drawn are the box's
        if not frame.contact_px:
            continue  # a centred frame: no contact of the parts within reach of the puzzle's location
        checked += 1
        key, (y, x) = frame.key, (p - s for p, s in zip(frame.point[1:], frame.start[1:]))
        assert abs((y + 0.5) * frame.scale - OUT_SIZE / 2) <= frame.scale
        assert abs((x + 0.5) * frame.scale - OUT_SIZE / 2) <= frame.scale
        near = np.s_[y - 1:y + 2, x - 1:x + 2]
        if frame.across:
            assert (a | b)[key, y, x] and (a | b)[key + frame.across][near].any()
        else:
            assert (a[key, y, x] and b[key][near].any()) or (b[key, y, x] and a[key][near].any())
    assert checked >= 10


def test_a_start_draws_again_the_pictures_an_older_renderer_drew_before_anyone_asks(inst, monkeypatch):
    from game.app.prepare import prepare
    inst.settings.update(PRERENDER=True)
    inst.pool.prepare_volume("demo")
    agg = inst.agglomeration("demo")
    shown = [p for p in st.puzzles(inst.store, volume="demo", tutorial=None) if p["state"] == "open" or p["gold"]]
    assert shown and all(_cache(inst).has(picture_key(p, agg, inst.picture_secret)) for p in shown)
    monkeypatch.setattr(render, "RENDERER_VERSION", render.RENDERER_VERSION + 1)  # an upgrade that draws anew
    assert not any(_cache(inst).has(picture_key(p, agg, inst.picture_secret)) for p in shown)
    prepare(inst)  # the start's preparation (before: pictures waited for the first request of each)
    assert {j["name"]: j["state"] for j in st.jobs(inst.store)}["prepare"] == "done"
    assert all(_cache(inst).has(picture_key(p, agg, inst.picture_secret)) for p in shown)


def _merge_with_a_neighbour(inst, puzzle) -> int:
    """Merge a puzzle's first part with a neighbour that is not its other part (its pictures' key changes);
    returns the edit's sequence number."""
    agg = inst.agglomeration("demo")
    rag = RAG.from_arrays(inst.volumes.open("demo").load_side("rag"))
    first, other = agg.segment_of(puzzle["anchors"][0]), agg.segment_of(puzzle["anchors"][1])
    edges = np.flatnonzero((agg.mapping[rag.u] == first) & ~np.isin(agg.mapping[rag.v], [first, other]))
    with inst.store.write():
        return inst.segmentations.commit_edit("demo", agg.plan_merge(first, int(agg.mapping[rag.v[edges[0]]])),
                                              author="test")


def test_pictures_no_puzzle_shows_any_more_are_removed_once_old_and_the_rest_kept(inst):
    import os
    import time
    inst.settings.update(PRERENDER=True)
    ids, made = oracle_puzzles(inst, n_merge=6, n_split=2, gold_every=2)
    # practice and teach copies (their pictures have a 'truth' variant), and a puzzle in the expert queue
    ids += st.add_puzzles(inst.store, "demo", [{**made[0], "gold": False, "tutorial": True},
                                               {**made[2], "gold": True, "teach": True}])
    crowd, expert = [p for p in (st.puzzle(inst.store, i) for i in ids) if not p["gold"] and not p["tutorial"]][:2]
    st.set_puzzle_state(inst.store, expert["id"], "expert")
    images.prerender(inst, ids)
    gold = next(p for p in (st.puzzle(inst.store, i) for i in ids) if p["gold"])
    old = picture_key(crowd, inst.agglomeration("demo"), inst.picture_secret)
    gold_key = picture_key(gold, inst.agglomeration("demo"), inst.picture_secret)
    inst.pool.after_decision("demo", crowd, _merge_with_a_neighbour(inst, crowd))  # drawn anew, new key
    new = picture_key(crowd, inst.agglomeration("demo"), inst.picture_secret)
    folder = inst.cache_dir / "puzzles"
    assert new != old and _cache(inst).has(old) and _cache(inst).has(new)
    (folder / ".staging-left-by-a-crash").mkdir()
    (folder / "notes.txt").write_text("not the cache's")
    (folder / "not.a.key").mkdir()  # nor this folder
    agg = inst.agglomeration("demo")
    keys = {picture_key(p, agg, inst.picture_secret) for p in (st.puzzle(inst.store, i) for i in ids)
            if p["state"] != "moot"}
    shown = {e.name for e in os.scandir(folder) if any(e.name == k or e.name.startswith(f"{k}-") for k in keys)}
    assert old not in shown and new in shown and len(shown) >= len(ids)
    assert any(name.endswith("-truth") for name in shown)  # (the practice and teach puzzles' answers)

    assert images.prune(inst) == (0, 0)  # all drawn within the hour: kept (another process, a player's screen)
    removed, freed = images.prune(inst, older_than=time.time() + 1)
    assert removed >= 2 and freed > 0  # the old pictures and the crash's staging folder
    assert not _cache(inst).has(old) and not (folder / ".staging-left-by-a-crash").exists()
    assert _cache(inst).has(new) and _cache(inst).has(gold_key)
    assert (folder / "notes.txt").exists() and (folder / "not.a.key").is_dir()
    # every picture a puzzle shows now is kept: truth variants, practice, teach, gold and the expert queue's
    assert shown <= {entry.name for entry in os.scandir(folder)}
    assert all(_cache(inst).has(picture_key(st.puzzle(inst.store, i), inst.agglomeration("demo"),
                                            inst.picture_secret)) for i in ids)
    # what it removed is drawn again if asked for (a puzzle undone back to it)
    path, _ = images.puzzle_image(inst, crowd["id"], 0, "overlay")
    assert path.is_file() and os.path.getsize(path) > 0


def test_a_start_and_a_long_running_servers_rescans_remove_old_pictures(inst, monkeypatch):
    from game.app.prepare import prepare
    inst.settings.update(PRERENDER=True)
    ids, _ = oracle_puzzles(inst, n_merge=6, n_split=0, gold_every=100)
    images.prerender(inst, ids)
    monkeypatch.setattr(images, "PRUNE_AFTER_SECONDS", -1.0)  # every picture counts as old
    first = st.puzzle(inst.store, ids[0])
    old = picture_key(first, inst.agglomeration("demo"), inst.picture_secret)
    _merge_with_a_neighbour(inst, first)
    prepare(inst)
    assert not _cache(inst).has(old)
    assert inst.pictures_pruned_at is not None

    second = st.puzzle(inst.store, ids[2])
    old = picture_key(second, inst.agglomeration("demo"), inst.picture_secret)
    inst.pool.after_decision("demo", second, _merge_with_a_neighbour(inst, second))
    assert _cache(inst).has(old)  # pruned at the start, less than PRUNE_EVERY_SECONDS ago
    monkeypatch.setattr(images, "PRUNE_EVERY_SECONDS", 0.0)
    third = st.puzzle(inst.store, ids[4])
    inst.pool.after_decision("demo", third, _merge_with_a_neighbour(inst, third))
    assert not _cache(inst).has(old)


def test_a_picture_removed_while_it_is_asked_for_is_drawn_again(tmp_path):
    """A prune can take a folder whose key an undo just brought back: between the cache's check and the read, the
    request draws it again (before: a 400 'no slice 3', or a 500 from the missing file)."""
    import time
    cache = PuzzleImageCache(tmp_path)
    drawn = []

    def make():
        drawn.append(1)
        return [{"plain": b"plain", "overlay": b"overlay"}]
    cache.get("k1-r1-abc", 0, False, make)
    really_has, pruned = cache.has, []

    def has_then_pruned(key):  # the folder is there when looked for, and gone right after
        present = really_has(key)
        if not pruned:
            pruned.append(cache.prune(set(), time.time() + 1))
        return present
    cache.has = has_then_pruned
    path = cache.get("k1-r1-abc", 0, True, make)
    assert pruned == [(1, len(b"plain") + len(b"overlay"))] and path.read_bytes() == b"overlay"
    assert len(drawn) == 2


def test_an_image_request_whose_file_goes_between_finding_and_sending_it_is_answered(inst, monkeypatch):
    client, puzzle = _guest_with_a_puzzle(inst)
    found, calls = images.puzzle_image, []

    def found_then_pruned(*args, **kwargs):
        path, key = found(*args, **kwargs)
        if not calls:  # pruned between the lookup and send_file (under a key no puzzle had a moment ago)
            _cache(inst).prune(set(), float("inf"))
        calls.append(path)
        return path, key
    monkeypatch.setattr(images, "puzzle_image", found_then_pruned)
    with client.get(f"/puzzle-image/{puzzle['id']}/3/overlay.png") as reply:
        assert reply.status_code == 200 and reply.data.startswith(b"\x89PNG")
    assert len(calls) == 2
