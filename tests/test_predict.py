"""zoo.predict on tiny models: records in order, the JSONL schema, preprocessing from metadata,
model directories / .keras files / in-memory models, streaming, artefacts, usage errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import LABELS, make_corpus, serve, tiny_model, with_meta, write_images


def _expected(model, path, *, resize="squash", crop_pct=None, channels=3, scale=1.0):
    from zoo.data.images import decode_image, resize_for_model

    size = model.input_shape[1:3]
    array, _ = resize_for_model(decode_image(path, channels=channels), size, resize=resize, crop_pct=crop_pct)
    return np.asarray(model(array[None].astype("float32") * scale))[0]


def _scores(record):
    return {p["index"]: p["score"] for p in record["predictions"]}


def test_records_match_the_model_in_order_with_schema(tmp_path):
    import zoo

    model = with_meta(tiny_model())
    paths = write_images(tmp_path / "imgs", 7)
    records = zoo.predict([str(p) for p in paths], model=model, top_k=2, batch_size=3)
    assert [r["source"] for r in records] == [str(p) for p in paths]
    for record, path in zip(records, paths):
        assert set(record) == {"source", "ok", "task", "predictions"}
        assert record["ok"] is True and record["task"] == "classification"
        assert len(record["predictions"]) == 2
        expected = _expected(model, path)
        top = np.argsort(-expected)[:2]
        assert [p["index"] for p in record["predictions"]] == list(top)
        for p in record["predictions"]:
            assert set(p) == {"label", "index", "score"} and p["label"] == LABELS[p["index"]]
            assert p["score"] == pytest.approx(float(expected[p["index"]]), abs=1e-5)
        json.dumps(record)  # JSON-serialisable as is


def test_resize_policy_comes_from_metadata(tmp_path):
    import zoo

    path = write_images(tmp_path, 1, size=(40, 20))[0]
    squash = with_meta(tiny_model(), resize="squash")
    crop = with_meta(tiny_model(), resize="crop", crop_pct=0.875)
    [r_squash] = zoo.predict(str(path), model=squash, top_k=3)
    [r_crop] = zoo.predict(str(path), model=crop, top_k=3)
    want_squash = _expected(squash, path)
    want_crop = _expected(crop, path, resize="crop", crop_pct=0.875)
    assert not np.allclose(want_squash, want_crop, atol=1e-4)  # the policies do differ on this input
    for index, score in _scores(r_squash).items():
        assert score == pytest.approx(float(want_squash[index]), abs=1e-5)
    for index, score in _scores(r_crop).items():
        assert score == pytest.approx(float(want_crop[index]), abs=1e-5)


def test_gray_model_and_external_normalisation(tmp_path):
    import zoo

    path = write_images(tmp_path, 1)[0]
    gray = with_meta(tiny_model(channels=1))
    [record] = zoo.predict(str(path), model=gray, top_k=3)
    want = _expected(gray, path, channels=1)
    for index, score in _scores(record).items():
        assert score == pytest.approx(float(want[index]), abs=1e-5)
    # a model without preprocessing inside: predict applies the metadata's (unit = x / 255)
    bare = with_meta(tiny_model(rescale=False), in_model=False, mode="unit", scale=1 / 255, mean=[0.0], std=[1.0])
    [record] = zoo.predict(str(path), model=bare, top_k=3)
    want = _expected(bare, path, scale=1 / 255)
    for index, score in _scores(record).items():
        assert score == pytest.approx(float(want[index]), abs=1e-5)


def test_model_directory_and_keras_file(tmp_path):
    import zoo
    from zoo.modeldir import write_model_dir

    model = with_meta(tiny_model(), resize="squash")
    out = write_model_dir(model, tmp_path / "run")
    path = write_images(tmp_path / "imgs", 1)[0]
    [from_dir] = zoo.predict(str(path), model=str(out), top_k=3)
    [from_file] = zoo.predict(str(path), model=str(out / "model.keras"), top_k=3)
    [in_memory] = zoo.predict(str(path), model=model, top_k=3)
    assert from_dir["predictions"] == in_memory["predictions"]
    assert from_file["predictions"] == in_memory["predictions"]  # metadata.json beside model.keras is read


def test_awkward_corpus_one_record_each_in_order(tmp_path):
    import zoo

    corpus = make_corpus(tmp_path / "awkward")
    records = zoo.predict([str(p) for p, _ in corpus], model=with_meta(tiny_model()), batch_size=4)
    assert [r["source"] for r in records] == [str(p) for p, _ in corpus]
    assert [r["ok"] for r in records] == [ok for _, ok in corpus]
    for record in records:
        if not record["ok"]:
            assert set(record) == {"source", "ok", "error"} and "\n" not in record["error"]


def test_streams_with_bounded_lookahead(tmp_path):
    from zoo.inference import iter_predict

    path = str(write_images(tmp_path, 1)[0])
    pulled = 0

    def sources():
        nonlocal pulled
        for _ in range(10_000):
            pulled += 1
            yield path

    stream = iter_predict(sources(), model=with_meta(tiny_model()), batch_size=4, workers=2)
    first = next(stream)
    assert first["ok"] and pulled <= 64  # decoded a few batches ahead, not the whole input
    stream.close()


def test_save_dir_and_usage_errors(tmp_path):
    import zoo

    paths = write_images(tmp_path / "a", 2) + write_images(tmp_path / "b", 1)  # b/img000 shares a stem with a/img000
    model = with_meta(tiny_model())
    records = zoo.predict([str(p) for p in paths], model=model, save_dir=tmp_path / "out")
    assert all(r["ok"] for r in records)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["img000.png", "img000_1.png", "img001.png"]
    with pytest.raises(ValueError, match="top_k"):
        zoo.predict(str(paths[0]), model=model, top_k=0)
    with pytest.raises(ValueError, match="weights"):
        zoo.predict(str(paths[0]), model=model, weights="imagenet")
    with pytest.raises(ValueError, match="does not exist"):
        zoo.predict(str(paths[0]), model=str(tmp_path / "nowhere" / "model.keras"))
    with pytest.raises(ValueError, match="Unknown model"):
        zoo.predict(str(paths[0]), model="resnet_51")


def test_logits_become_probabilities():
    from zoo.training.task import get_task

    task = get_task("classification")
    meta = {"labels": LABELS}
    [record] = task.postprocess(np.array([[2.0, -1.0, 0.5]]), [{}], meta, {"top_k": 3})
    scores = [p["score"] for p in record["predictions"]]
    assert sum(scores) == pytest.approx(1.0, abs=1e-5) and record["predictions"][0]["label"] == "cat"
    [record] = task.postprocess(np.array([[0.9]]), [{}], {"labels": ["no", "yes"]}, {"top_k": 1})
    assert record["predictions"] == [{"label": "yes", "index": 1, "score": 0.9}]


def test_classification_task_hooks_are_its_own_methods(tmp_path):
    from zoo.training.task import get_task
    from zoo.tasks.classification import ClassificationTask
    from zoo.training.options import TrainOptions

    task = get_task("classification")
    assert type(task) is ClassificationTask
    for name in ("postprocess", "save", "check_data", "load_data", "build_model", "loss", "metrics", "monitor",
                 "metadata", "evaluate", "report"):
        assert name in vars(ClassificationTask), name  # defined by the task, not inherited or forwarded
    assert task.monitor(TrainOptions()) == ("val_accuracy", "max")
    with pytest.raises(ValueError, match="does not exist"):
        task.load_data(tmp_path / "missing", TrainOptions(input_shape=(16, 16, 3), batch_size=2))


def test_url_sources(tmp_path):
    import zoo
    write_images(tmp_path, 1)
    model = with_meta(tiny_model())
    with serve(tmp_path) as base:
        records = zoo.predict([f"{base}/img000.jpg", f"{base}/nope.jpg"], model=model, top_k=3)
    assert [r["ok"] for r in records] == [True, False] and "404" in records[1]["error"]
    want = _expected(model, tmp_path / "img000.jpg")
    for index, score in _scores(records[0]).items():
        assert score == pytest.approx(float(want[index]), abs=1e-5)


def test_save_dir_keeps_one_original_at_a_time(tmp_path, monkeypatch):
    """--save-dir used to hold a batch of full-size originals (3.7 GB vs 1.9 GB for 8 large photos):
    decoded originals are no longer kept with the batch; each is decoded again when drawn, and the
    artefacts are the same."""
    import zoo
    from zoo import inference
    from zoo.training.task import get_task

    model = with_meta(tiny_model())
    paths = write_images(tmp_path / "a", 3)
    from zoo.modeldir import get_meta

    load = inference._loader(get_task("classification"), {**get_meta(model), "input_shape": [16, 16, 3]},
                             max_pixels=None, keep_image=True)
    assert load((0, str(paths[0]), None))[4] is None  # the batch carries no original
    drawn = []
    original_decode = inference._decode
    monkeypatch.setattr(inference, "_decode", lambda source, **kw: drawn.append(source) or original_decode(source, **kw))
    records = zoo.predict([str(p) for p in paths], model=model, save_dir=tmp_path / "out", batch_size=8)
    assert all(r["ok"] for r in records) and len(list((tmp_path / "out").iterdir())) == 3
    assert drawn.count(str(paths[0])) == 2  # once for the batch, once, alone, for its artefact
