"""``python -m bench [--quick] [--json]``: the project's batch engines against lime, anchor-exp, shap and DiCE.

Every ratio is reference time / project time (or the reverse where named so) measured in this process on
the same table, model, parameters and sample counts. Keys that were not measured are ``null`` with a note.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core per process, as a Celery worker runs

GOALS: dict[str, tuple[str, float | str]] = {
    "lime_speedup": (">=", 8),
    "lime_speedup_bc": (">=", 20),
    "lime_overhead": ("<=", 1.5),
    "lime_agreement": (">=", "lime_self_agreement"),
    "lime_overhead_fresh": ("<=", 1.5),
    "lime_agreement_fresh": (">=", "lime_self_agreement"),
    "anchor_speedup": (">=", 5),
    "anchor_precision": (">=", 0.93),
    "anchor_coverage_ratio": (">=", 0.9),
    "anchor_default_precision": (">=", 0.93),
    "anchor_default_coverage_ratio": (">=", 0.9),
    "shap_kernel_speedup": (">=", 3),
    "shap_max_abs_diff": ("<=", "reference"),
    "treeshap_speedup": (">=", 1.8),
    "table_predict_speedup": (">=", 1),  # the compiled predict path is kept only while it beats the pipeline's own
    "table_predict_max_abs_diff": ("<=", 0),
    "e2e_overhead": ("<=", 1.2),
    "worker_scaling": (">=", 1.7),
    "bigdata_web_max_rss_mb": ("<=", 300),
    "ingest_1m_s": ("<=", 5),  # only with the 1,000,000 rows of the full bench (--quick uploads 100,000)
    "job_default_vs_notebook": ("<=", 1.0),
    "job_first_explanation_vs_notebook": ("<=", 1.0),
    "job_whole_test_scaling": (">=", 1.8),
    "recovery_s": ("<=", 120),
    "counterfactual_speedup": (">=", 1),  # the batched search is only kept while it beats DiCE's random method
    "counterfactual_validity": (">=", "reference"),
    "counterfactual_proximity": ("<=", "reference"),
    "counterfactual_sparsity": ("<=", "reference"),
}
SIZES = {  # rows explained per section
    True: {"lime": 8, "lime_bc": 6, "anchor": 4, "anchor_beam4": 0, "anchor_default": 0, "kernel": 3, "svm_train": 1000, "tree": 48,
           "counterfactual": 8, "predict": 2},
    False: {"lime": 48, "lime_bc": 48, "anchor": 24, "anchor_beam4": 8, "anchor_default": 3, "kernel": 12, "svm_train": 3000, "tree": 2000,
            "counterfactual": 48, "predict": 3},
}


def run(quick: bool, skip: set[str], platform: bool = False) -> dict[str, Any]:
    from bench import sections
    from bench.tables import adult_table, breast_cancer_table, forest_predictor
    from explanations.ml.engine import engine_threads

    sizes = SIZES[quick]
    out: dict[str, Any] = {"quick": quick, "batch_size": sections.batch_size(), "cpu_count": os.cpu_count(),
                           "engine_threads": engine_threads()}
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    mark = [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        seconds[name] = round(now - mark[0], 1)
        mark[0] = now

    adult = adult_table()
    cancer = breast_cancer_table()
    main = adult or cancer
    out["table"] = main.name
    forest = forest_predictor(main, min_samples_leaf=3)
    lap("setup")
    if "lime" not in skip:
        if adult is not None:
            out.update(sections.lime_section(adult, forest, sizes["lime"]))
        else:
            out.update({"lime_speedup": None, "lime_note": "shared/datasets/adult.csv is absent"})
        out.update(sections.lime_section(cancer, forest_predictor(cancer), sizes["lime_bc"], suffix="_bc"))
        if adult is None:
            for key in ("lime_agreement", "lime_agreement_fresh", "lime_self_agreement", "lime_overhead"):
                out.setdefault(key, None)
        lap("lime")
    if "anchor" not in skip:
        # Beam 1 is the search anchor-exp's explain_instance runs whatever beam_size it is given; the app's
        # default of 4 candidates is compared with anchor-exp's anchor_beam at 4 in the full run.
        out.update(sections.anchor_section(main, forest, sizes["anchor"], beam_size=1))
        if sizes["anchor_beam4"]:
            out.update(sections.anchor_section(main, forest, sizes["anchor_beam4"], beam_size=4, suffix="_beam4"))
        if sizes["anchor_default"] and adult is not None:  # the default Adult job's two models, 3 rows, trust reruns
            out.update(sections.anchor_default_section(adult, sizes["anchor_default"]))
        else:
            out.update({key: None for key in ("anchor_default_speedup", "anchor_default_seconds_per_row",
                                              "anchor_default_precision", "anchor_default_coverage_ratio")})
            out["anchor_default_note"] = "the default-job anchors section runs in the full bench, on shared/datasets/adult.csv"
        lap("anchor")
    if "shap" not in skip:
        out.update(sections.kernel_shap_section(main, sizes["kernel"], svm_train_rows=sizes["svm_train"]))
        lap("kernel_shap")
        out.update(sections.treeshap_section(main, forest, sizes["tree"]))
        lap("treeshap")
    if "predict" not in skip:
        from bench.predict import table_predict_section

        out.update(table_predict_section(main, sizes["predict"]))
        lap("predict")
    if "counterfactual" not in skip:
        from bench.counterfactual import counterfactual_section

        out.update(counterfactual_section(main, forest, sizes["counterfactual"], batch=sections.batch_size()))
        lap("counterfactual")
    if "gpu" not in skip:
        out.update(sections.gpu_section(main))
        lap("gpu")
    if "image_trust" not in skip:
        from bench.image_trust import image_trust_section

        out.update(image_trust_section(quick))
        lap("image_trust")
    if "images" not in skip:
        from bench.images import image_section

        out.update(image_section(quick))
        lap("images")
    if "platform" not in skip and (platform or not quick):
        from bench.platform import platform_section

        out.update(platform_section(quick=quick))
    else:
        from bench.platform import PLATFORM_NULLS

        out.update(PLATFORM_NULLS)
        out["platform_note"] = ("the platform sections (app stack: e2e_overhead, worker_scaling, bigdata_*) run in the "
                                "full bench or with --platform" + ("; skipped" if "platform" in skip else ""))
    lap("platform")
    if "jobs" not in skip:
        from bench.jobs import job_sections

        out.update(job_sections(quick))
        if out.get("worker_two_process_ceiling_jobs") is not None:  # beside job_whole_test_scaling when worker_scaling did not run
            out.setdefault("worker_two_process_ceiling", out["worker_two_process_ceiling_jobs"])
    else:
        from bench.jobs import JOB_NULLS

        out.update(JOB_NULLS)
        out["job_note"] = "the job sections (job_*, recovery_s) were skipped"
    lap("jobs")
    out["section_seconds"] = seconds
    out["bench_seconds"] = time.perf_counter() - started
    return out


def _met(key: str, out: dict[str, Any]) -> str:
    if key not in GOALS or out.get(key) is None:
        return ""
    if key == "ingest_1m_s" and out.get("bigdata_rows") != 1_000_000:
        return "n/a"  # a smaller file than the goal's
    op, goal = GOALS[key]
    value = out[key]
    if isinstance(value, dict):
        value, goal = value["project"], value[goal]
    elif isinstance(goal, str):
        goal = out.get(goal)
        if goal is None:
            return ""
    ok = value >= goal if op == ">=" else value <= goal
    return "yes" if ok else "NO"


def table_text(out: dict[str, Any]) -> str:
    lines = [f"{'key':<36} {'value':>22}  {'goal':<24} met"]
    for key, value in out.items():
        if isinstance(value, dict):
            shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in value.items())
        elif isinstance(value, float):
            shown = f"{value:.4g}"
        else:
            shown = "null" if value is None else str(value)
        goal = " ".join(str(part) for part in GOALS[key]) if key in GOALS else ""
        if len(shown) > 22:
            lines.append(f"{key:<36} {'':>22}  {goal:<24} {_met(key, out)}")
            lines.append(f"    {shown}")
        else:
            lines.append(f"{key:<36} {shown:>22}  {goal:<24} {_met(key, out)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer rows per section (a minute for the engines, some minutes more for the job sections)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--skip", default="", help="comma-separated sections to leave out: lime, anchor, shap, predict, counterfactual, gpu, "
                                                          "images, image_trust, platform, jobs")
    parser.add_argument("--platform", action="store_true",
                        help="run the platform sections (a real app stack: e2e_overhead, worker_scaling, 1M-row upload) "
                             "even with --quick; the full bench always runs them")
    args = parser.parse_args(argv)
    out = run(args.quick, {part.strip() for part in args.skip.split(",") if part.strip()}, platform=args.platform)
    print(json.dumps(out, indent=1) if args.json else table_text(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
