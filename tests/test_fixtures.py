from hardneg.data.beir import load_beir


def test_tiny_beir_loads(tiny_beir):
    d = load_beir(tiny_beir, "test")
    assert d.corpus.ids[:2] == ["d1", "d2"]
    assert d.relevant("q1") == ["d1", "d4"]
    assert d.qrels["q1"]["d3"] == 0
    assert d.corpus.passage_texts()[2] == "The sun is a star at the centre of the solar system."


def test_tiny_model_encodes(tiny_model):
    from hardneg.encode.load import load_encoder

    enc = load_encoder(str(tiny_model))
    v = enc.encode_passages(["a kitten is a juvenile cat", "wolves"])
    assert v.shape == (2, 32) and v.dtype.name == "float32"
