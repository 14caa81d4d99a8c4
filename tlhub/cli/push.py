"""``tlhub push MODEL_DIR --repo-id USER/NAME [--private] [--space [--space-id ID]]``: publish to the Hub."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "push",
        help="publish a trained model (native weights, model card with its metrics, plots) to the Hub, optionally with a Gradio Space",
        description=(
            "Create or update the model repo in one commit: the backbone library's own files, tlhub's training record, "
            "evaluation and plots, and a model card generated from them. The endpoint comes from HF_ENDPOINT, the token "
            "from HF_TOKEN or `hf auth login`. A failed push leaves the repo unchanged: run it again."
        ),
    )
    p.add_argument("model_dir", help="folder written by `tlhub train` (holds tlhub.json)")
    p.add_argument("--repo-id", required=True, help="model repo to create or update, USER/NAME")
    p.add_argument("--private", action="store_true", help="create the repo(s) private (or make an existing one private)")
    p.add_argument("--space", action="store_true", help="also push a Gradio demo Space that loads the model")
    p.add_argument("--space-id", help="the Space's id (default: USER/NAME-demo); implies --space")
    p.add_argument("--message", "-m", help="commit message (default: says what was trained, its score, and what changed)")
    p.add_argument("--license", help="licence id for the card (default: the base model's)")
    p.add_argument("--examples", nargs="+", metavar="FILE", help="example inputs for the Space when the model folder has no examples/")
    p.add_argument("--dry-run", action="store_true", help="show what would be pushed, and write the card to MODEL_DIR/README.md, without pushing")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="seconds a request may wait for the Hub before it is retried (3 attempts with backoff, then an "
                   "error naming the endpoint; default: HF_HUB_DOWNLOAD_TIMEOUT when set, else 60)")
    p.set_defaults(handler=run)


def run(args) -> int:
    import sys
    from pathlib import Path

    from tlhub.publishing.push import push_model

    def progress(text: str) -> None:
        print(text, file=sys.stderr)

    result = push_model(
        args.model_dir,
        args.repo_id,
        private=args.private,
        space=args.space,
        space_id=args.space_id,
        message=args.message,
        license=args.license,
        examples=args.examples,
        dry_run=args.dry_run,
        progress=progress,
        timeout=args.timeout,
    )
    if args.dry_run:
        card = Path(args.model_dir) / "README.md"
        card.write_text(result.card, encoding="utf-8")
        progress(f"model card written to {card}")
    if args.json:
        from dataclasses import asdict

        from tlhub.cli._output import print_json

        data = {"model": asdict(result.model), "space": asdict(result.space) if result.space else None}
        print_json(data)
        return 0
    for push in filter(None, (result.model, result.space)):
        state = "up to date" if push.up_to_date else ("would push" if args.dry_run else "pushed")
        print(f"{push.url}  [{state}]  {push.commit_message}")
        for title, paths in (("added", push.added), ("changed", push.changed), ("removed", push.deleted)):
            if paths:
                print(f"  {title}: {', '.join(paths)}")
    return 0
