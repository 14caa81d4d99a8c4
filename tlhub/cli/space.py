"""``tlhub space MODEL [--out DIR]`` writes a Gradio Space; ``tlhub space serve DIR`` runs it locally."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "space",
        help="write a Gradio Space (app.py, README.md, requirements.txt, examples) for a trained model; `space serve DIR` runs one",
        description=(
            "tlhub space MODEL_DIR_OR_REPO [--out DIR] [--repo-id USER/NAME]   write a Space folder\n"
            "tlhub space serve DIR [--port 7860]                               run it locally (analytics off)"
        ),
    )
    p.add_argument("target", help="a saved model folder or a pushed model's USER/NAME; or `serve`")
    p.add_argument("space_dir", nargs="?", help="with `serve`: the Space folder to run")
    p.add_argument("--out", help="folder to write (default: MODEL_DIR-space next to the model)")
    p.add_argument("--repo-id", help="the Hub model repo the app loads (default: the repo given as MODEL)")
    p.add_argument("--examples", nargs="+", metavar="FILE", help="example inputs (images, or .txt files of texts), added to the model's examples/")
    p.add_argument("--title", help="Space title (default: the model name)")
    p.add_argument("--top-k", type=int, help="how many labels the app shows (default 5)")
    p.add_argument("--license", help="licence id (default: the model's)")
    p.add_argument("--template", help="a Space template folder of your own (holding app.py) instead of tlhub's")
    p.add_argument("--no-local-model", action="store_true", help="do not copy the model into DIR/model (the app then loads --repo-id)")
    p.add_argument("--overwrite", action="store_true",
                   help="rebuild DIR even though files in it were edited, added or removed since tlhub wrote it (those "
                   "changes are lost); without it, such a DIR is left alone and the command fails. An unchanged Space is "
                   "always rebuilt; a folder tlhub did not write is never replaced")
    p.add_argument("--port", type=int, default=7860, help="with `serve`: port on 127.0.0.1 (default 7860)")
    p.add_argument("--host", default="127.0.0.1", help="with `serve`: address to listen on (default 127.0.0.1)")
    p.set_defaults(handler=run)


def run(args) -> int:
    from pathlib import Path

    from tlhub.errors import ConfigError

    # `serve` is the action unless a saved model folder is literally called ./serve and no DIR follows
    if args.target == "serve" and (args.space_dir or not Path("serve").is_dir()):
        if not args.space_dir:
            raise ConfigError("`tlhub space serve` needs the Space folder", fix="tlhub space serve DIR [--port 7860]")
        if not 1 <= args.port <= 65535:
            raise ConfigError(f"--port must be between 1 and 65535, got {args.port}", fix="use --port 7860, for example")
        _check_port(args.host, args.port)
        from tlhub.publishing.spaces import serve_space

        print(f"serving {args.space_dir} on http://{args.host}:{args.port} (Ctrl-C stops it)", flush=True)
        # serve_space passes SIGTERM/SIGINT on to app.py and waits for it to exit
        code = int(serve_space(args.space_dir, port=args.port, host=args.host) or 0)
        return 128 - code if code < 0 else code  # killed by signal N: exit 128 + N, as a shell reports it
    if args.space_dir:
        raise ConfigError(f"unexpected argument {args.space_dir!r}", fix="tlhub space MODEL_DIR_OR_REPO --out DIR")
    from tlhub.publishing.spaces import build_space

    build = build_space(
        args.target,
        args.out,
        model_id=args.repo_id,
        examples=args.examples,
        title=args.title,
        top_k=args.top_k,
        license=args.license,
        include_model=False if args.no_local_model else None,
        template=args.template,
        overwrite=args.overwrite,
    )
    print(f"Space written to {build.path}")
    print(f"  app loads     {build.model_id or 'the copy in model/'}" + (" (or ./model when present)" if build.model_id and build.has_local_model else ""))
    print(f"  examples      {len(build.examples)}")
    print(f"  requirements  {', '.join(build.requirements)}")
    print(f"run it:  tlhub space serve {build.path}")
    if build.model_id:
        print(f"push it: tlhub push MODEL_DIR --repo-id {build.model_id} --space")
    return 0


def _check_port(host: str, port: int) -> None:
    """Fail before starting the app when it could not listen on ``host:port`` (taken, not an address
    of this machine, privileged): the app would fail later, deep in Gradio, or listen elsewhere."""
    import errno
    import socket

    from tlhub.errors import ConfigError

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError(f"--host {host} is not an address of this machine ({exc})",
                          fix="use --host 127.0.0.1 (this machine only) or --host 0.0.0.0 (every network)") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: a closing connection is no obstacle
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(f"port {port} on {host} is already in use (another Space or server listens there)",
                                  fix=f"stop that server, or choose another port: tlhub space serve DIR --port {port + 1 if port < 65535 else 7860}") from None
            if exc.errno == errno.EACCES:
                raise ConfigError(f"port {port} on {host} needs administrator rights", fix="use a port above 1023, e.g. --port 7860") from None
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                              fix="use --host 127.0.0.1 (this machine only) or --host 0.0.0.0 (every network)") from None
