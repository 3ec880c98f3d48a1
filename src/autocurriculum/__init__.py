"""autocurriculum: drive a Tunix GRPO run through a behaviour -> correctness -> domains curriculum."""

__version__ = "0.1.0"
