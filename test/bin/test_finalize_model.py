"""Stage 10 exports: LoRA adapters in PEFT format reproduce our model's LLM; check_pretrained messages."""
import torch
import yaml
from peft import PeftModel
from transformers import AutoModel, AutoModelForCausalLM

from espnet_speechllm.bin import check_pretrained, finalize_model
from espnet_speechllm.tasks.speechllm import SpeechLLMTask


def test_peft_export_reproduces_both_sides(tiny_models, make_model_args, tmp_path):
    args = make_model_args(tiny_models, "lora", "lora")
    torch.manual_seed(0)
    model = SpeechLLMTask.build_model(args).eval()
    with torch.no_grad():  # LoRA B starts at zero; give the adapters an effect to reproduce
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.5)
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "config.yaml").write_text(yaml.safe_dump({k: v for k, v in vars(args).items()}))
    torch.save(model.state_dict(), exp / "valid.acc.ave.pth")
    finalize_model.main(["--exp_dir", str(exp)])

    ids = torch.randint(3, 100, (2, 9))
    llm = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(f"{tiny_models}/llm"), exp / "peft/llm").eval()
    with torch.no_grad():
        assert torch.allclose(llm(input_ids=ids).logits, model.llm.model(input_ids=ids).logits, atol=1e-5)
        plain = AutoModelForCausalLM.from_pretrained(f"{tiny_models}/llm").eval()
        assert not torch.allclose(plain(input_ids=ids).logits, model.llm.model(input_ids=ids).logits, atol=1e-3)

    wav = torch.randn(1, 8000)
    enc = PeftModel.from_pretrained(AutoModel.from_pretrained(f"{tiny_models}/encoder"), exp / "peft/encoder").eval()
    with torch.no_grad():
        assert torch.allclose(enc(wav).last_hidden_state, model.encoder.model(wav).last_hidden_state, atol=1e-5)

    # --force is a value, as in every tool: false keeps an existing export, true rewrites it
    exported = exp / "peft/llm/adapter_config.json"
    original = exported.read_text()
    exported.write_text("{}")
    finalize_model.main(["--exp_dir", str(exp), "--force", "false"])
    assert exported.read_text() == "{}"
    finalize_model.main(["--exp_dir", str(exp), "--force", "true"])
    assert exported.read_text() == original


def test_finalize_without_training_says_what_to_do(tmp_path, make_model_args, tiny_models):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(vars(make_model_args(tiny_models))))
    try:
        finalize_model.main(["--exp_dir", str(tmp_path)])
    except SystemExit as e:
        assert "run training (stage 9) first" in str(e)
    else:
        raise AssertionError("finalize_model must fail without a model")


def test_check_pretrained(tiny_models, tmp_path, caplog):
    assert check_pretrained.main(["--encoder_dir", f"{tiny_models}/encoder", "--llm_dir", f"{tiny_models}/llm"]) == 0
    assert check_pretrained.main(["--encoder_dir", str(tmp_path / "nope"), "--llm_dir", f"{tiny_models}/encoder"]) == 1
    text = caplog.text
    assert "facebook/hubert-large-ll60k" in text and "nope" in text
    assert "no tokenizer" in text
    assert check_pretrained.main(["--encoder_dir", f"{tiny_models}/llm", "--llm_dir", f"{tiny_models}/llm"]) == 1
    assert "model_type='llama'" in caplog.text
