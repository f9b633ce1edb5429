"""A Titanic-like passenger list made on the fly (the real one is not in ``../shared``): an id column, names
with commas, a ticket code with hundreds of values, a mostly empty cabin column, and the 0/1 outcome."""

from __future__ import annotations

import numpy as np

COLUMNS = ["PassengerId", "Survived", "Pclass", "Name", "Sex", "Age", "SibSp", "Parch", "Ticket", "Fare", "Cabin",
           "Embarked"]


def passengers_csv(n: int = 400, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    lines = [",".join(COLUMNS)]
    for i in range(n):
        sex = rng.choice(["male", "female"])
        pclass = int(rng.integers(1, 4))
        survived = int(rng.random() < (0.75 if sex == "female" else 0.2) + (0.1 if pclass == 1 else 0))
        age = "" if rng.random() < 0.2 else str(int(rng.integers(1, 80)))
        cabin = f"C{i}" if rng.random() < 0.23 else ""
        lines.append(f'{i + 1},{survived},{pclass},"Surname{i}, {"Mrs." if sex == "female" else "Mr."} Given{i}",{sex},'
                     f'{age},{int(rng.integers(0, 5))},{int(rng.integers(0, 4))},T{int(rng.integers(0, int(n * 0.76)))},'
                     f'{rng.random() * 100:.2f},{cabin},{rng.choice(["S", "C", "Q"])}')
    return ("\n".join(lines) + "\n").encode()
