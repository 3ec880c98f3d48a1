"""Seeded generators of questions with exact answers: the quickstart's arithmetic, code, and QA.

They need no network and no files, so the CPU quickstart and the phase-3 domains run anywhere, and
the same seed always gives the same items. A generator only writes questions; code answers come from
actually running the programs (execution.py), never from the generator's own idea of the output.
Changing any output here changes training data: bump CODE_GENERATOR_VERSION for code programs.
"""

from __future__ import annotations

import random

NAMES = ("Tom", "Ann", "Sam", "Lia", "Max", "Eva", "Ben", "Zoe", "Leo", "Mia", "Raj", "Kim")
THINGS = ("apple", "pen", "book", "coin", "card", "ball", "shell", "stamp", "cookie", "marble", "sticker", "flower")
ADD = (
    "{n} has {a} {i}s and buys {b} more. How many {i}s does {n} have?",
    "{n} had {a} {i}s and found {b} more. How many {i}s does {n} have now?",
    "There are {a} {i}s in a box. {n} puts in {b} more. How many {i}s are in the box?",
    "{n} got {a} {i}s on Monday and {b} {i}s on Tuesday. How many {i}s did {n} get in total?",
)
SUB = (
    "{n} has {a} {i}s and gives {b} to {m}. How many {i}s does {n} have left?",
    "{n} had {a} {i}s and lost {b}. How many {i}s does {n} have now?",
    "There are {a} {i}s in a box. {n} takes out {b}. How many {i}s are left in the box?",
    "{n} had {a} {i}s and sold {b} of them. How many {i}s are left?",
)


def arithmetic_problem(rnd: random.Random, steps: int, max_number: int) -> tuple[str, str, str]:
    """(question, answer, solution) of a generated add/subtract word problem; never negative."""
    n, m = rnd.sample(NAMES, 2)
    thing = rnd.choice(THINGS)
    a = rnd.randint(0, max_number)
    if rnd.random() < 0.5:
        b = rnd.randint(0, max_number)
        question, value, solution = rnd.choice(ADD).format(n=n, m=m, a=a, b=b, i=thing), a + b, f"{a} + {b} = {a + b}"
    else:
        b = rnd.randint(0, a)
        question, value, solution = rnd.choice(SUB).format(n=n, m=m, a=a, b=b, i=thing), a - b, f"{a} - {b} = {a - b}"
    if steps >= 2:
        c = rnd.randint(0, max_number)
        if rnd.random() < 0.5 or c > value:
            question += f" Then {n} gets {c} more. How many now?"
            solution += f", {value} + {c} = {value + c}"
            value += c
        else:
            question += f" Then {n} gives away {c}. How many now?"
            solution += f", {value} - {c} = {value - c}"
            value -= c
    return question, str(value), solution


CODE_GENERATOR_VERSION = 1
CODE_QUESTION = "What does this Python program print?\n{program}"


def code_program(rnd: random.Random) -> str:
    """A short deterministic Python program (loops, string ops, arithmetic, lists)."""
    kind = rnd.randrange(5)
    a, b, n = rnd.randint(1, 9), rnd.randint(1, 9), rnd.randint(2, 5)
    word = rnd.choice(("cat", "tree", "moon", "code", "rain", "star"))
    if kind == 0:
        return f"x = {a}\nfor i in range({n}):\n    x = x + {b}\nprint(x)"
    if kind == 1:
        return f"s = '{word}'\nprint(s[::-1] + str(len(s) * {a}))"
    if kind == 2:
        return f"xs = [{a}, {b}, {n}]\nxs.sort()\nprint(xs[-1] - xs[0])"
    if kind == 3:
        return f"total = 0\nfor i in range(1, {n + 2}):\n    total += i * {a}\nprint(total)"
    return f"w = '{word}'\nprint(w.upper()[:{n}] if {a} > {b} else w * 2)"


MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def qa_question(rnd: random.Random) -> tuple[str, str, str]:
    """(question, answer, solution): dates, units, a comparison; each with one exact answer."""
    kind = rnd.randrange(5)
    if kind == 0:
        d, k = rnd.randrange(7), rnd.randint(1, 12)
        return (f"Today is {DAYS[d]}. What day of the week is it in {k} days?", DAYS[(d + k) % 7],
                f"{k} days after {DAYS[d]} is {DAYS[(d + k) % 7]}")
    if kind == 1:
        meters = rnd.randint(1, 9)
        return (f"How many centimeters are in {meters} meters?", str(100 * meters), f"{meters} x 100 = {100 * meters}")
    if kind == 2:
        a, b = rnd.sample(NAMES, 2)
        x, y = rnd.sample(range(3, 15), 2)
        older = a if x > y else b
        return (f"{a} is {x} years old and {b} is {y} years old. Who is older?", older, f"{max(x, y)} > {min(x, y)}")
    if kind == 3:
        m, k = rnd.randrange(12), rnd.randint(1, 11)
        return (f"What month comes {k} months after {MONTHS[m]}?", MONTHS[(m + k) % 12],
                f"{k} months after {MONTHS[m]} is {MONTHS[(m + k) % 12]}")
    hours = rnd.randint(1, 5)
    return (f"How many minutes are in {hours} hours?", str(60 * hours), f"{hours} x 60 = {60 * hours}")
