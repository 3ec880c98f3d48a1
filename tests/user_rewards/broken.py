"""Reward functions that cannot work, for validate to refuse."""


def returns_strings(prompts, completions, **kwargs):
    return ["good" for _ in completions]


def no_kwargs(prompts, completions):
    return [0.0 for _ in completions]


def one_value_short(prompts, completions, **kwargs):
    return [0.0 for _ in completions][1:]
