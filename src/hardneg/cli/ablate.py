"""``hardneg ablate``: which mining method and teacher should I use on my data, and what does it buy?"""

from __future__ import annotations

import argparse

HELP = """Run the paper's ablation on your data: teachers x mining methods x seeds, plus reference rows
(base model untrained, random negatives, in-batch negatives only). Every cell mines (reusing cached
teacher pools), fine-tunes the student and evaluates it on the held-out split. Finished cells are
saved in DIR/cells/ and never recomputed: rerun the same command to resume a killed run.
Writes DIR/results.json, DIR/report.md (Table 3 / Table 1 shaped, with paired bootstrap intervals)
and PNG plots.

examples:
  hardneg ablate --output runs/quick                          # built-in quick recipe (SciFact, ~15 min CPU)
  hardneg ablate --config scifact --output runs/scifact       # five methods, two seeds
  hardneg ablate --config my.toml --output runs/x --seeds 0,1,2 --methods naive,percpos:0.95
  hardneg ablate --config scifact --probe-only --output runs/fn   # false-negative rates only (no training)
  hardneg ablate --output runs/quick --report-only            # rebuild report.md from results.json
"""

SUMMARY = "ablation grid: mining methods x teachers x seeds -> report"  # the line in `hardneg --help`


def register(subparsers) -> None:
    from hardneg.core.options import ListAction, add_alias
    from hardneg.core.recipes import packaged
    from hardneg.encode.base import ENCODER_BACKENDS
    from hardneg.experiment.config import LABELS

    p = subparsers.add_parser("ablate", help=SUMMARY,
                              description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="quick",
                   help="TOML recipe file, or a built-in recipe name: " + ", ".join(packaged("ablation"))
                        + " (default: quick)")
    p.add_argument("--output", "-o", required=True, help="run directory (resumed if it exists)")
    g = p.add_argument_group("overrides (each replaces the recipe's value; default: the recipe's)")
    recipe = " (default: the recipe's)"
    g.add_argument("--data", help="BEIR folder or dataset name, e.g. scifact" + recipe)
    g.add_argument("--train-split", help="split to mine and train on (default: the recipe's, train in the built-in "
                   "recipes)")
    g.add_argument("--eval-split", help="held-out split to evaluate on (default: the recipe's, test in the built-in "
                   "recipes)")
    g.add_argument("--student", help="model to fine-tune, e.g. minilm or a folder" + recipe)
    g.add_argument("--teacher", dest="teachers", action=ListAction, metavar="MODEL",
                   help="teachers minilm, bm25, random, fuse:minilm+bm25 (hybrid) or a model: repeat the flag or give a comma list, as in mine "
                        "and tune" + recipe)
    add_alias(g, "--teachers", of="--teacher")
    g.add_argument("--methods", action=ListAction, metavar="SPECS",
                   help="repeat or comma list: naive,shifted:10,abs:0.7,marginpos:0.05,percpos:0.95" + recipe)
    g.add_argument("--references", action=ListAction, metavar="ROWS",
                   help="reference rows, repeat or comma list: base,random,inbatch" + recipe)
    g.add_argument("--seeds", action=ListAction, type=int, metavar="SEEDS",
                   help="seeds, repeat or comma list, e.g. 0,1" + recipe)
    g.add_argument("--num-negatives", type=int,
                   help="hard negatives per (query, positive), mined and trained on" + recipe)
    g.add_argument("--max-train-queries", type=int, help="train on a seeded subset of this many queries" + recipe)
    g.add_argument("--teacher-backend", choices=ENCODER_BACKENDS,
                   help="how dense teachers encode (onnx-int8: ~2x faster on CPU, cos 0.99 to fp32)" + recipe)
    g.add_argument("--eval-backend", choices=ENCODER_BACKENDS, help="how students are evaluated" + recipe)
    g.add_argument("--labels", choices=LABELS,
                   help="sparse: miner and trainer see one positive per training query (the best-graded); the "
                        "others are held out and give each method's false-negative rate (default: the recipe's, "
                        "full unless it says sparse)")
    g.add_argument("--fn-probe-data", help="dataset with many judged positives for the false-negative probe" + recipe)
    g.add_argument("--probe-only", action="store_true", default=None,
                   help="only the false-negative probe cells (mining, no training): quick (default: the recipe's, "
                        "off in the built-in recipes)")
    g.add_argument("--epochs", type=float, help="training epochs per cell" + recipe)
    g.add_argument("--batch-size", type=int, help="training batch size (also the in-batch negatives pool)" + recipe)
    g.add_argument("--lr", type=float, help="learning rate" + recipe)
    g.add_argument("--temperature", type=float, help="InfoNCE temperature τ (0.05 = scale 20)" + recipe)
    p.add_argument("--cache-dir", help="embedding/pool cache (default: $HARDNEG_CACHE or ~/.cache/hardneg)")
    p.add_argument("--dry-run", action="store_true", help="list the cells (and which are done) and exit (default: off)")
    p.add_argument("--report-only", action="store_true",
                   help="rebuild report.md and plots from DIR/results.json (default: off)")
    p.add_argument("--partial", action="store_true", help="with --report-only: build the report from the finished "
                   "cells of --config's grid (DIR/cells), e.g. while a run is still going or after it was stopped "
                   "(default: off)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots (default: off, plots are written)")
    p.add_argument("--no-progress", action="store_true",
                   help="hide progress bars, as evaluate's --no-progress (default: off, bars shown)")
    add_alias(p, "--quiet", of="--no-progress")
    p.add_argument("--force", action="store_true",
                   help="write into an existing non-empty --output folder that is not an ablation run (default: refuse)")
    p.set_defaults(func=run)


MARKERS = ("cells", "work", "results.json", "results.json.meta.json", "report.md")  # a run folder: resumed


def _overrides(args) -> dict:
    keys = ("data", "train_split", "eval_split", "student", "teachers", "methods", "references", "seeds",
            "num_negatives", "max_train_queries", "teacher_backend", "eval_backend", "fn_probe_data", "cache_dir",
            "probe_only", "labels")
    out = {k: getattr(args, k) for k in keys}
    out["train"] = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                    "temperature": args.temperature}
    return out


def run(args) -> int:
    from pathlib import Path

    from hardneg.cli.guard import data_paths, model_paths
    from hardneg.core.errors import HardnegError
    from hardneg.core.outputs import guard_output
    from hardneg.experiment.config import load_config

    if not str(args.output).strip():
        raise HardnegError("--output is empty: give a folder path")
    out = Path(args.output)
    if args.report_only and args.partial:
        return _partial_report(load_config(args.config, **_overrides(args)), out, plots=not args.no_plots)
    if args.report_only:
        from hardneg.core.files import read_json
        from hardneg.report.markdown import write_report

        if not (out / "results.json").is_file():
            raise HardnegError(f"{out / 'results.json'} not found: run the ablation first")
        with guard_output(out, kind="dir"):
            res = read_json(out / "results.json")
            path, rows, pngs = write_report(res["cells"], out, plots=not args.no_plots)
        _print_tables(res["cells"], rows)
        print(f"\nreport: {path}")
        return 0
    cfg = load_config(args.config, **_overrides(args))
    if args.dry_run:
        return _dry_run(cfg, out)
    from hardneg.experiment.grid import run_ablation
    from hardneg.report.tables import summarize

    inputs = [*data_paths(cfg.data, cfg.fn_probe_data), *model_paths(cfg.student, *cfg.teachers)]
    with guard_output(out, kind="dir", inputs=inputs, exists="ours", markers=MARKERS, force=args.force,
                      recursive=True):
        res = run_ablation(cfg, out, progress=not args.no_progress, plots=not args.no_plots)
    _print_tables(res["cells"], summarize(res["cells"]))
    print(f"\nresults: {out / 'results.json'}\nreport:  {res['report']}")
    for p in res["plots"]:
        print(f"plot:    {p}")
    return 0


def _partial_report(cfg, out: Path, *, plots: bool = True) -> int:
    """report.md from the finished cells of ``cfg``'s grid; says how many are missing."""
    from hardneg.core.outputs import guard_output
    from hardneg.experiment.grid import load_finished, plan_cells
    from hardneg.experiment.stages import Stages
    from hardneg.report.markdown import write_report

    stages = Stages(cfg, out, progress=False)
    cells = plan_cells(cfg, stages.data_fingerprint(), stages.probe_fingerprint())
    done = load_finished(out)
    got = [done[c.id] for c in cells if c.id in done]
    missing = [f"{c.kind} {c.row} {c.teacher or ''} seed {c.seed}".replace("  ", " ") for c in cells if c.id not in done]
    notes = [*cfg.describe(), f"- partial report: {len(got)} of {len(cells)} cells finished"
             + (f"; not yet run: {', '.join(missing)}" if missing else "")]
    with guard_output(out / "report.md", kind="file"):
        path, rows, _ = write_report(got, out, title=f"hardneg ablation: {cfg.data} (partial)", notes=notes, plots=plots)
    _print_tables(got, rows)
    print(f"\n{len(got)} of {len(cells)} cells finished\nreport: {path}")
    return 0


def _print_tables(cells, rows) -> None:
    from hardneg.report.tables import fn_table, method_table

    if rows:
        print(method_table(rows))
    if fn_table(cells):
        print(("\n" if rows else "") + fn_table(cells))


def _dry_run(cfg, out) -> int:
    from hardneg.experiment.grid import load_finished, plan_cells
    from hardneg.experiment.stages import Stages

    st = Stages(cfg, out, progress=False)
    done = load_finished(out)
    cells = plan_cells(cfg, st.data_fingerprint(), st.probe_fingerprint())
    for c in cells:
        print(f"{'done' if c.id in done else 'todo'}  {c.id:21s} {c.kind:8s} {c.row:14s} {c.teacher or '-':10s} seed {c.seed}")
    print(f"{sum(c.id in done for c in cells)}/{len(cells)} cells done")
    return 0
