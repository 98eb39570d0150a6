"""Optuna as the reference for test/search: reads a JSON list of tasks on stdin, prints the list of answers.

asha:  replays recorded curves through SuccessiveHalvingPruner or HyperbandPruner in the event
       order given ([trial, step] pairs), with trial.report + trial.should_prune, and prints the
       step each trial was pruned at (null: not pruned).
tpe:   minimises Branin, 6-d Hartmann or a mixed (log, choice, integer, uniform) function with TPESampler (its defaults) or RandomSampler for each
       seed and prints the best value found per seed.
normal: Optuna's truncated-normal functions (erf, log ndtr, Gaussian mass, inverse CDF, log density) at given
        points, and TPE's default gamma and weights.
split: TPESampler's split of complete, pruned and running trials into good and bad.
densities: TPESampler's good and bad Parzen estimators' log densities at given points.
"""

import json
import math
import sys

import numpy as np
import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)


def asha(task):
    curves = task["curves"]
    if task["pruner"] == "hyperband":
        pruner = optuna.pruners.HyperbandPruner(
            min_resource=task["min_resource"], max_resource=task["max_resource"], reduction_factor=task["eta"]
        )
    else:
        pruner = optuna.pruners.SuccessiveHalvingPruner(
            min_resource=task["min_resource"], reduction_factor=task["eta"], min_early_stopping_rate=0, bootstrap_count=0
        )
    study = optuna.create_study(study_name=task["study"], direction=task["direction"], pruner=pruner)
    # Asked up front, in index order, so that trial.number is the point's index (Hyperband's brackets hang on it).
    trials = [study.ask() for _ in curves]
    pruned_at = [None] * len(curves)
    ended = [False] * len(curves)
    for i, step in task["events"]:
        if ended[i]:
            continue
        value = curves[i][step - 1]
        value = float("nan") if value is None else value
        trials[i].report(value, step)
        if trials[i].should_prune():
            pruned_at[i] = step
            ended[i] = True
            study.tell(trials[i], state=optuna.trial.TrialState.PRUNED)
        elif step == len(curves[i]):
            ended[i] = True
            study.tell(trials[i], value if not math.isnan(value) else 0.0)
    return {"pruned_at": pruned_at}


def branin(x1, x2):
    a, b, c, r, s, t = 1.0, 5.1 / (4 * math.pi**2), 5 / math.pi, 6.0, 10.0, 1 / (8 * math.pi)
    return a * (x2 - b * x1**2 + c * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s


H_A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
H_P = [
    [1312, 1696, 5569, 124, 8283, 5886],
    [2329, 4135, 8307, 3736, 1004, 9991],
    [2348, 1451, 3522, 2883, 3047, 6650],
    [4047, 8828, 8732, 5743, 1091, 381],
]
H_ALPHA = [1.0, 1.2, 3.0, 3.2]


def hartmann6(x):
    return -sum(
        H_ALPHA[i] * math.exp(-sum(H_A[i][j] * (x[j] - 1e-4 * H_P[i][j]) ** 2 for j in range(6))) for i in range(4)
    )


def mixed(lr, units, batch, dropout):
    """A log-scale, a choice, an integer and a uniform parameter: the kinds a sweep has."""
    return (math.log10(lr) + 3.3) ** 2 + {64: 0.5, 128: 0.0, 256: 0.25}[units] + ((batch - 41) / 12) ** 2 + 4 * (dropout - 0.2) ** 2


def tpe(task):
    def objective(trial):
        if task["fn"] == "mixed":
            return mixed(
                trial.suggest_float("lr", 1e-5, 1e-1, log=True),
                trial.suggest_categorical("units", [64, 128, 256]),
                trial.suggest_int("batch", 16, 64),
                trial.suggest_float("dropout", 0, 0.5),
            )
        if task["fn"] == "branin":
            return branin(trial.suggest_float("x1", -5, 10), trial.suggest_float("x2", 0, 15))
        return hartmann6([trial.suggest_float(f"x{j}", 0, 1) for j in range(6)])

    bests = []
    for seed in range(task["seeds"]):
        sampler = optuna.samplers.TPESampler(seed=seed) if task["sampler"] == "tpe" else optuna.samplers.RandomSampler(seed=seed)
        study = optuna.create_study(sampler=sampler, direction="minimize")
        study.optimize(objective, n_trials=task["n"])
        bests.append(study.best_value)
    return {"bests": bests}


def normal(task):
    """Optuna's truncated-normal numerics at the given points, to check exp's port of them."""
    from optuna.samplers._tpe import _truncnorm
    from optuna.samplers._tpe.sampler import default_gamma, default_weights

    xs = np.asarray(task["xs"], dtype=float)
    a, b = np.asarray(task["a"], dtype=float), np.asarray(task["b"], dtype=float)
    q = np.asarray(task["q"], dtype=float)
    return {
        "erf": [math.erf(x) for x in task["xs"]],
        "erfc": [math.erfc(x) for x in task["xs"]],
        "log_ndtr": _truncnorm._log_ndtr(xs).tolist(),
        "log_mass": _truncnorm._log_gauss_mass(a, b).tolist(),
        "ppf": _truncnorm.ppf(q, a, b).tolist(),
        # JSON has no -inf: outside the range is null.
        "logpdf": [v if math.isfinite(v) else None for v in _truncnorm.logpdf(np.asarray(task["x"], dtype=float), a, b, loc=0.3, scale=1.7).tolist()],
        "gamma": [default_gamma(n) for n in range(task["n"])],
        "weights": [default_weights(n).tolist() for n in range(task["n"])],
    }


def split(task):
    """TPESampler's split of the known trials into good (below) and bad (above), by trial number."""
    from optuna.samplers._tpe.sampler import _split_trials, default_gamma

    study = optuna.create_study(direction=task["direction"])
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    states = {"complete": optuna.trial.TrialState.COMPLETE, "pruned": optuna.trial.TrialState.PRUNED, "running": optuna.trial.TrialState.RUNNING}
    for t in task["trials"]:
        steps = {} if t.get("step") is None else {t["step"]: float("nan") if t["value"] is None else t["value"]}
        study.add_trial(
            optuna.trial.create_trial(
                state=states[t["state"]],
                value=t["value"] if t["state"] == "complete" else None,
                params={"x": 0.5},
                distributions=dist,
                intermediate_values=steps,
            )
        )
    trials = study.get_trials(deepcopy=False)
    n = sum(t.state != optuna.trial.TrialState.RUNNING for t in trials)
    below, above = _split_trials(study, trials, default_gamma(n))
    return {"below": [t.number for t in below], "above": [t.number for t in above]}


def densities(task):
    """TPESampler's good and bad Parzen estimators' log densities at given points, for a given history."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    from optuna.samplers._tpe.sampler import _split_trials, default_gamma

    kinds = {
        "uniform": lambda d: FloatDistribution(d["low"], d["high"]),
        "log_uniform": lambda d: FloatDistribution(d["low"], d["high"], log=True),
        "int_uniform": lambda d: IntDistribution(d["low"], d["high"]),
        "choice": lambda d: CategoricalDistribution(d["values"]),
    }
    space = {k: kinds[d["distribution"]](d) for k, d in task["space"].items()}
    study = optuna.create_study(direction=task["direction"])
    for t in task["trials"]:
        study.add_trial(optuna.trial.create_trial(params=t["params"], distributions=space, value=t["value"]))
    trials = study.get_trials(deepcopy=False)
    below, above = _split_trials(study, trials, default_gamma(len(trials)))
    sampler = optuna.samplers.TPESampler()
    xs = {k: np.asarray([d.to_internal_repr(x[k]) for x in task["xs"]], dtype=float) for k, d in space.items()}
    return {
        "below": sampler._build_parzen_estimator(study, space, below, True).log_pdf(xs).tolist(),
        "above": sampler._build_parzen_estimator(study, space, above, False).log_pdf(xs).tolist(),
    }


TASKS = {"asha": asha, "tpe": tpe, "normal": normal, "split": split, "densities": densities}

if __name__ == "__main__":
    tasks = json.load(sys.stdin)
    json.dump([TASKS[t["task"]](t) for t in tasks], sys.stdout)
