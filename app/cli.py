"""`labelloop` command line: serve | worker | migrate | demo | create-user | token | import | simulate."""

import argparse
import logging
import os
import signal
import sys
from pathlib import Path


def _setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Alembic narrates every plugin and migration step at INFO; only its warnings matter at start.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))


def cmd_migrate(args) -> int:
    from app.migrate import upgrade_to_head

    upgrade_to_head()
    print("database schema is up to date")
    return 0


def cmd_worker(args) -> int:
    from app.worker.runner import run_worker

    n = run_worker(once=args.once, parent_pid=args.parent_pid)
    if args.once:
        print(f"ran {n} job(s)")
    return 0


def cmd_serve(args) -> int:
    """The whole product on one machine: migrations, one worker process, and the web server."""
    import uvicorn

    from app.config import get_settings
    from app.migrate import upgrade_to_head

    upgrade_to_head()
    worker = None
    if not args.no_worker:
        from app.worker.keeper import KeptWorker

        # --parent-pid: uvicorn ends a SIGTERM by raising it again, so this process dies before the
        # `finally` below can stop the worker; the worker notices its parent is gone by itself (the
        # pid is passed, not read by the worker, in case this process is gone before the worker is up).
        # A worker that dies is started again (app/worker/keeper.py).
        worker = KeptWorker([sys.executable, "-m", "app.cli", "worker", "--parent-pid", str(os.getpid())],
                            env=os.environ.copy()).start()
    print(f"labelloop is at http://{args.host}:{args.port}/  (worker pid {worker.pid if worker else 'none'})",
          flush=True)
    try:
        uvicorn.run("app.main:create_app", factory=True, host=args.host, port=args.port, workers=args.workers,
                    log_level="info", proxy_headers=True, forwarded_allow_ips=get_settings().trusted_proxies)
    finally:
        if worker is not None:
            worker.stop(signal.SIGTERM)
    return 0


def cmd_demo(args) -> int:
    from app.db import session_scope
    from app.demo import load_demo
    from app.migrate import upgrade_to_head

    upgrade_to_head()
    with session_scope() as session:
        loaded = load_demo(session, limit=args.limit)
    print(f"demo project {loaded.project_id}: {_count(loaded.items, 'item')}")
    if loaded.image_project_id is not None:
        print(f"demo image project {loaded.image_project_id}: {_count(loaded.image_items, 'item')}")
    if loaded.logins:
        print("demo logins (for a local trial; change them on a shared server):")
        for role, username, password in loaded.logins:
            print(f"  {role:<10} {username} / {password}")
    return 0


def cmd_create_user(args) -> int:
    from app.db import session_scope
    from app.migrate import upgrade_to_head
    from app.users.service import create_user, issue_api_token

    upgrade_to_head()
    password = args.password or os.environ.get("LABELLOOP_NEW_PASSWORD")
    if not password:
        if not sys.stdin.isatty():  # a script, `docker compose exec -T`, CI: nobody to ask
            print("error: no password given; pass --password or set LABELLOOP_NEW_PASSWORD", file=sys.stderr)
            return 2
        import getpass

        password = getpass.getpass(f"password for {args.username}: ")
    try:
        with session_scope() as session:
            user = create_user(session, username=args.username, password=password, role=args.role)
            token = issue_api_token(session, user=user, name="cli") if args.print_token else None
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"created {args.role} {args.username}", file=sys.stderr)
    if token:
        print(token)
    return 0


def cmd_token(args) -> int:

    from app.db import session_scope
    from app.users.service import issue_api_token, user_named

    with session_scope() as session:
        user = user_named(session, args.username)
        if user is None:
            print(f"error: no user {args.username!r}", file=sys.stderr)
            return 2
        print(issue_api_token(session, user=user, name=args.name))
    return 0


def cmd_import(args) -> int:

    from app.db import session_scope
    from app.models import Project, User
    from app.pool.service import ImportRefused, import_pool
    from app.users.service import user_named

    path = Path(args.file)
    if not path.is_file():
        print(f"error: no file {args.file}", file=sys.stderr)
        return 2
    try:
        with session_scope() as session, path.open("rb") as fh:
            project = session.get(Project, args.project)
            if project is None or project.deleted_at is not None:
                print(f"error: no project {args.project}", file=sys.stderr)
                return 2
            imported_by = None
            if args.label_column:
                # Imported labels are annotations, so they need a user: the one named, else the
                # project's creator.
                imported_by = (user_named(session, args.user) if args.user
                               else session.get(User, project.created_by_id) if project.created_by_id else None)
                if imported_by is None:
                    print(f"error: no user {args.user!r}" if args.user else
                          "error: the project has no creator to record the labels under; name one with --user",
                          file=sys.stderr)
                    return 2
            result = import_pool(session, project=project, fileobj=fh, filename=path.name,
                                 text_column=args.text_column, id_column=args.id_column,
                                 label_column=args.label_column, embedding_column=args.embedding_column,
                                 imported_by=imported_by)
    except ImportRefused as exc:
        print("the file was not imported:", *exc.errors, sep="\n  ", file=sys.stderr)
        return 1
    skipped = ""
    if result.skipped_duplicates:
        more = ", ..." if result.skipped_duplicates > len(result.skipped_places) else ""
        skipped = (f"; left out {_count(result.skipped_duplicates, 'row')} already in the project "
                   f"({', '.join(result.skipped_places)}{more})")
        if result.labels_for_existing:
            skipped += f", whose {_count(result.labels_for_existing, 'label')} went to those items"
        if result.labels_already_there:
            skipped += f"; {_count(result.labels_already_there, 'label')} those items had already"
        if result.answers_standing:
            skipped += f"; {_count(result.answers_standing, 'own answer')} given on a card stand"
    print(f"imported {_count(result.imported, 'item')}"
          + (f", {result.labelled} with a label from column {result.label_column!r}" if result.label_column else "")
          + (f" ({result.not_accepted} Prodigy answers reject or ignore, without one)" if result.not_accepted else "")
          + skipped)
    if result.conflicting_labels:
        more = ", ..." if result.conflicting_labels > len(result.conflicting_places) else ""
        print(f"{_count(result.conflicting_labels, 'label')} left out: another row of the file gave the same item "
              f"another label first, and the first stands: {'; '.join(result.conflicting_places)}{more}")
    if result.unnamed_images:
        more = ", ..." if result.unnamed_images > len(result.unnamed_image_names) else ""
        print(f"left out {_count(result.unnamed_images, 'picture')} in the .zip that its table does not name "
              f"({', '.join(result.unnamed_image_names)}{more})")
    return 0


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def cmd_simulate(args) -> int:
    import json

    from app.al.simulate import SimulationConfig, load_dataset, plot_curves, simulate

    try:
        dataset = load_dataset(args.data, label_column=args.label_column, text_column=args.text_column)
        params = json.loads(args.strategy_params) if args.strategy_params else {}
        config = SimulationConfig(initial=args.initial, batch_size=args.batch_size, budget=args.budget,
                                  test_fraction=args.test_fraction, repeats=args.repeats, seed=args.seed)
        result = simulate(dataset, [s.strip() for s in args.strategies.split(",") if s.strip()], config=config,
                          strategy_params=params, progress=lambda line: print(line, file=sys.stderr, flush=True))
    except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    Path(args.out).write_text(json.dumps(result, indent=1))
    if args.plot:
        plot_curves(result, args.plot)
    width = max(len(name) for name in result["summary"])
    print(f"{dataset.name}: {len(dataset.y)} rows, {dataset.kind}; AULC over {config.repeats} repeats")
    for name, row in sorted(result["summary"].items(), key=lambda kv: -kv[1]["aulc_mean"]):
        print(f"  {name:<{width}}  {row['aulc_mean']:.4f} +- {row['aulc_std']:.4f}  ({row['seconds_mean']:.1f} s/run)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labelloop", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the web server and one worker")
    p.add_argument("--host", default=os.environ.get("LABELLOOP_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("LABELLOOP_PORT", "8000")))
    p.add_argument("--workers", type=int, default=1, help="web processes")
    p.add_argument("--no-worker", action="store_true", help="do not start a background worker")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("worker", help="run the background worker (retrains and re-ranks)")
    p.add_argument("--once", action="store_true", help="stop when the queue is empty")
    p.add_argument("--parent-pid", type=int, help="stop (after the job at hand) once this process, its parent, ends")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("migrate", help="apply the database migrations")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("demo", help="load the demo project and users (idempotent)")
    p.add_argument("--limit", type=int, default=None, help="import only the first N snippets")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("create-user", help="create a user")
    p.add_argument("username")
    p.add_argument("--role", choices=["admin", "lead", "annotator"], default="annotator")
    p.add_argument("--password", help="(or LABELLOOP_NEW_PASSWORD, or asked)")
    p.add_argument("--print-token", action="store_true", help="also create an API token and print it")
    p.set_defaults(func=cmd_create_user)

    p = sub.add_parser("token", help="issue an API token for an existing user")
    p.add_argument("username")
    p.add_argument("--name", default="cli")
    p.set_defaults(func=cmd_token)

    p = sub.add_parser("simulate", help="replay a labelled file to compare query strategies")
    p.add_argument("--data", required=True, help="CSV, JSONL or Parquet (optionally .bz2) with labels")
    p.add_argument("--label-column", required=True)
    p.add_argument("--text-column", help="texts; without it every numeric column but the label is a feature")
    p.add_argument("--strategies", default="random,margin")
    p.add_argument("--strategy-params", help='JSON per strategy, e.g. {"vote_entropy": {"n_members": 7}}')
    p.add_argument("--initial", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=10)
    p.add_argument("--budget", type=int, default=300)
    p.add_argument("--test-fraction", type=float, default=0.3)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="simulation.json")
    p.add_argument("--plot", help="write the learning curves to this PNG")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("import", help="import a pool file into a project")
    p.add_argument("project", type=int)
    p.add_argument("file")
    p.add_argument("--text-column", help="the texts (text projects) or the pictures (image projects)")
    p.add_argument("--id-column")
    p.add_argument("--embedding-column", help="each item's own embedding, which the model then learns from "
                                              "(default: a column named embedding, embeddings, vector or emb)")
    p.add_argument("--label-column", help="a column of labels already given (an export's 'label'): they become "
                                          "training labels; empty cells stay unlabelled")
    p.add_argument("--user", help="the user the imported labels are recorded under (default: the project's creator)")
    p.set_defaults(func=cmd_import)
    return parser


def main(argv: list[str] | None = None) -> int:
    _setup_logging(os.environ.get("LABELLOOP_LOG_LEVEL", "INFO"))
    args = build_parser().parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
