"""Waveform preprocessing from the encoder dir's preprocessor_config.json: the checkpoint's do_normalize and
return_attention_mask decide, a contradicting YAML value is warned about, and the encoder's output equals HF's own
pipeline (``AutoFeatureExtractor`` + ``AutoModel``) on a padded batch."""
import json
import logging

import numpy as np
import pytest
import torch
from transformers import AutoFeatureExtractor, AutoModel, HubertConfig, HubertModel

from espnet_speechllm.encoder.hf_speech_encoder import HFSpeechEncoder

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            conv_dim=[32, 32, 32], conv_kernel=[10, 3, 3], conv_stride=[5, 2, 2], conv_bias=True,
            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
# facebook/hubert-large-ll60k: layer-norm front-end, stable layer norm; its feature extractor normalizes and
# returns the attention mask (values known from the Hub; no copy of the file could be vendored).
LARGE_STYLE = (dict(feat_extract_norm="layer", do_stable_layer_norm=True),
               dict(do_normalize=True, return_attention_mask=True))
# facebook/hubert-base-ls960, facebook/wav2vec2-base: group-norm front-end, raw zero-padded waveforms, no mask.
BASE_STYLE = (dict(feat_extract_norm="group", do_stable_layer_norm=False),
              dict(do_normalize=False, return_attention_mask=False))


def make_dir(path, arch: dict, preprocessing: dict | None):
    torch.manual_seed(0)
    HubertModel(HubertConfig(**TINY, **arch)).save_pretrained(path)
    if preprocessing is not None:
        conf = dict(feature_extractor_type="Wav2Vec2FeatureExtractor", feature_size=1, padding_side="right",
                    padding_value=0.0, sampling_rate=16000)
        (path / "preprocessor_config.json").write_text(json.dumps({**conf, **preprocessing}, indent=2))
    return str(path)


def waves():
    rng = np.random.default_rng(0)
    return [(0.1 + 0.3 * rng.standard_normal(n)).astype(np.float32) for n in (16000, 9600)]


def ours(encoder, batch):
    lengths = torch.tensor([len(w) for w in batch])
    speech = torch.zeros(len(batch), int(lengths.max()))
    for i, w in enumerate(batch):
        speech[i, : len(w)] = torch.from_numpy(w)
    with torch.no_grad():
        return encoder.eval()(speech, lengths)


def hf_pipeline(model_dir, batch):
    """What a user of the checkpoint runs: its feature extractor, then the model, on the padded batch."""
    inputs = AutoFeatureExtractor.from_pretrained(model_dir)(batch, sampling_rate=16000, padding=True,
                                                             return_tensors="pt")
    with torch.no_grad():
        return AutoModel.from_pretrained(model_dir).eval()(**inputs).last_hidden_state, inputs


@pytest.mark.parametrize("style", [LARGE_STYLE, BASE_STYLE], ids=["hubert_large_ll60k", "hubert_base_wav2vec2_base"])
def test_checkpoint_preprocessing_decides_and_equals_hf(tmp_path, style):
    arch, preprocessing = style
    model_dir = make_dir(tmp_path / "enc", arch, preprocessing)
    encoder = HFSpeechEncoder(model_dir=model_dir)
    assert encoder.normalize_waveform == preprocessing["do_normalize"]
    assert encoder.uses_attention_mask == preprocessing["return_attention_mask"]
    batch = waves()
    hidden, lengths = ours(encoder, batch)
    expected, inputs = hf_pipeline(model_dir, batch)
    assert ("attention_mask" in inputs) == preprocessing["return_attention_mask"]
    for i, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(hidden[i, :n], expected[i, :n], rtol=1e-4, atol=1e-4)


def test_yaml_that_contradicts_the_checkpoint_is_warned_about(tmp_path, caplog):
    model_dir = make_dir(tmp_path / "enc", *LARGE_STYLE)
    with caplog.at_level(logging.WARNING):
        encoder = HFSpeechEncoder(model_dir=model_dir, normalize_waveform=False, use_attention_mask=False)
    assert encoder.normalize_waveform and encoder.uses_attention_mask
    path = f"{model_dir}/preprocessor_config.json"
    assert (f"encoder_conf.normalize_waveform=False contradicts do_normalize=True in {path}; using do_normalize=True"
            in caplog.text)
    assert f"encoder_conf.use_attention_mask=False contradicts return_attention_mask=True in {path}" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        HFSpeechEncoder(model_dir=model_dir, normalize_waveform=True, use_attention_mask=True)  # agrees
    assert "contradicts" not in caplog.text


def test_without_preprocessor_config_the_yaml_or_the_front_end_decides(tmp_path):
    large = make_dir(tmp_path / "large", LARGE_STYLE[0], None)
    base = make_dir(tmp_path / "base", BASE_STYLE[0], None)
    assert HFSpeechEncoder(model_dir=large).normalize_waveform and HFSpeechEncoder(model_dir=large).uses_attention_mask
    assert not HFSpeechEncoder(model_dir=base).uses_attention_mask  # group norm: no mask
    encoder = HFSpeechEncoder(model_dir=base, normalize_waveform=False, use_attention_mask=True)
    assert not encoder.normalize_waveform and encoder.uses_attention_mask


def test_a_bad_preprocessor_config_is_named(tmp_path):
    model_dir = make_dir(tmp_path / "enc", LARGE_STYLE[0], dict(LARGE_STYLE[1], sampling_rate=8000))
    with pytest.raises(ValueError, match=r"preprocessor_config.json: sampling_rate 8000, but the audio pipeline is "
                                         r"16000 Hz"):
        HFSpeechEncoder(model_dir=model_dir)
    (tmp_path / "enc" / "preprocessor_config.json").write_text("{not json")
    with pytest.raises(ValueError, match="preprocessor_config.json does not load"):
        HFSpeechEncoder(model_dir=model_dir)
