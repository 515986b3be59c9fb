#!/usr/bin/env python3
"""Train (or ``--collect_stats``) a SpeechLLM model with ESPnet's Trainer.

    python -m espnet_speechllm.bin.speechllm_train --config conf/train.yaml \\
        --train_data_path_and_name_and_type dump/raw/train/wav.scp,speech,audio \\
        --train_data_path_and_name_and_type dump/raw/train/text,text,transcript ... --output_dir exp/x
"""
from espnet_speechllm.tasks.speechllm import SpeechLLMTask


def get_parser():
    return SpeechLLMTask.get_parser()


def main(cmd=None):
    SpeechLLMTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
