"""A Bradley-Terry fit for the responses of one prompt: P(i beats j) = sigmoid(s_i - s_j).

Scores are the maximum a posteriori under a weak N(0, 1 / ridge) prior on each score, so a response that won (or
lost) every comparison still gets a finite score and a sparse design an interval; the intervals come from the
inverse Hessian of the log posterior (a Laplace approximation). Scores are centred on their mean.
"""

import math
from dataclasses import dataclass

Z95 = 1.959963984540054
RIDGE = 0.1  # prior precision: a score of +-3 (a 95 % win rate against the mean response) costs as much as 1 lost vote


@dataclass(frozen=True)
class Fit:
    scores: list[float]
    errors: list[float]  # standard error of each score

    def interval(self, i: int, z: float = Z95) -> tuple[float, float]:
        return self.scores[i] - z * self.errors[i], self.scores[i] + z * self.errors[i]

    def order(self) -> list[int]:
        """Indices from the best to the worst (ties: the lower index first)."""
        return sorted(range(len(self.scores)), key=lambda i: (-self.scores[i], i))


def fit(n: int, wins: dict[tuple[int, int], tuple[float, float]], ridge: float = RIDGE, iterations: int = 50) -> Fit:
    """`wins[(i, j)] = (w_i, w_j)`: how many comparisons of i and j each won (votes, possibly fractional)."""
    import numpy as np

    s = np.zeros(n)
    pairs = [(i, j, float(wi), float(wj)) for (i, j), (wi, wj) in wins.items() if wi + wj > 0]
    hessian = np.eye(n) * ridge
    for _ in range(iterations):
        grad, hessian = -ridge * s, np.eye(n) * ridge
        for i, j, wi, wj in pairs:
            p = 1.0 / (1.0 + math.exp(-(s[i] - s[j])))
            g = wi - (wi + wj) * p
            h = (wi + wj) * p * (1.0 - p)
            grad[i] += g
            grad[j] -= g
            hessian[i, i] += h
            hessian[j, j] += h
            hessian[i, j] -= h
            hessian[j, i] -= h
        step = np.linalg.solve(hessian, grad)
        s += step
        if np.max(np.abs(step)) < 1e-9:
            break
    covariance = np.linalg.inv(hessian)
    centred = s - s.mean()
    return Fit([float(x) for x in centred], [float(math.sqrt(max(covariance[i, i], 0.0))) for i in range(n)])


def win_probability(fit_: Fit, i: int, j: int) -> float:
    return 1.0 / (1.0 + math.exp(-(fit_.scores[i] - fit_.scores[j])))
