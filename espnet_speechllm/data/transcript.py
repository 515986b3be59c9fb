"""The ``transcript`` data type: ``utt_id words...`` per line, where a line with the id alone is an EMPTY
transcript (non-speech utterances, paper Sec. 2.3).

ESPnet's ``text`` type is read line by line in streaming mode (collect stats), and that reader rejects a
line without a space; this type is always read as a whole, by the data-dir reader (``kaldi_dir``), which maps
such a line to "".
"""
from espnet2.train import dataset as espnet_dataset

from espnet_speechllm.data.kaldi_dir import read_kaldi_file


def read_transcripts(path, keys_to_load=None):
    return read_kaldi_file(path, allow_empty_value=True, keys=keys_to_load)


def register_transcript_type() -> None:
    espnet_dataset.DATA_TYPES.setdefault(
        "transcript",
        dict(
            func=read_transcripts,
            kwargs=["keys_to_load"],
            help="Kaldi text; a line holding only the utterance id is an empty transcript.",
        ),
    )
