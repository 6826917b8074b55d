"""`a2w text-cache`: build and inspect instruction-embedding cache files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# torch and the cache module are imported inside the commands: `a2w --help` stays fast.
_DEFAULT_MAX_LENGTH = 512  # a2world.text_embeddings.TEXT_MAX_LENGTH
_DTYPES = ("bfloat16", "float32")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "text-cache",
        help="instruction-embedding caches (T5 embeddings the policy loads without a text model)",
        description="Build and inspect instruction-embedding cache files.",
    )
    sub = parser.add_subparsers(dest="text_cache_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])

    build = sub.add_parser("build", help="encode instructions with a local T5 encoder into a cache file")
    build.add_argument("--t5", required=True, type=Path, help="directory with the T5 tokenizer and encoder weights")
    build.add_argument("--out", required=True, type=Path, help="cache file to write (.safetensors)")
    build.add_argument("-i", "--instruction", action="append", default=[], help="an instruction (repeatable)")
    build.add_argument("-f", "--instructions-file", type=Path, help="text file, one instruction per line")
    build.add_argument("--append", action="store_true", help="keep the instructions already in --out")
    build.add_argument("--max-length", type=int, default=_DEFAULT_MAX_LENGTH, help="tokens per instruction")
    build.add_argument("--device", default="cpu")
    build.add_argument("--dtype", choices=_DTYPES, default="float32", help="encoder compute dtype")
    build.set_defaults(func=_cmd_build)

    listing = sub.add_parser("list", help="list the instructions in a cache file")
    listing.add_argument("cache", type=Path)
    listing.set_defaults(func=_cmd_list)

    show = sub.add_parser("show", help="show one instruction's embedding summary")
    show.add_argument("cache", type=Path)
    show.add_argument("instruction")
    show.set_defaults(func=_cmd_show)

    for command in (build, listing, show):
        command.add_argument(
            "--allow-nonfinite", action="store_true", help="accept NaN/Inf embeddings (refused by default)"
        )


def _cmd_build(args: argparse.Namespace) -> int:
    import torch

    from a2world.text_embeddings import TextEmbeddingCache, build_text_embeddings, read_instruction_lines

    instructions = list(args.instruction)
    if args.instructions_file is not None:
        instructions += read_instruction_lines(args.instructions_file.read_text().splitlines())
    instructions = read_instruction_lines(instructions)
    if not instructions:
        print("text-cache build: give at least one --instruction or an --instructions-file", file=sys.stderr)
        return 2
    try:
        built = build_text_embeddings(
            args.t5,
            instructions,
            max_length=args.max_length,
            device=args.device,
            dtype=getattr(torch, args.dtype),
            allow_nonfinite=args.allow_nonfinite,
        )
        if args.append and args.out.exists():
            cache = TextEmbeddingCache.load(args.out, allow_nonfinite=args.allow_nonfinite)
            cache.merge(built)
        else:
            cache = built
    except (ImportError, OSError, ValueError) as exc:
        print(f"text-cache build: {exc}", file=sys.stderr)
        return 1
    cache.save(args.out)
    print(f"wrote {args.out}: {len(cache)} instructions, {cache.max_length} x {cache.dim} each")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from a2world.text_embeddings import TextEmbeddingCache

    try:
        cache = TextEmbeddingCache.load(args.cache, allow_nonfinite=args.allow_nonfinite)
    except (OSError, ValueError) as exc:
        print(f"text-cache list: {exc}", file=sys.stderr)
        return 1
    print(f"{args.cache}: {len(cache)} instructions, {cache.max_length} x {cache.dim}, encoder {cache.encoder or '?'}")
    for key in cache.instructions:
        print(f"{cache.num_tokens(key):4d} tokens  {key}")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from a2world.text_embeddings import MissingInstructionError, TextEmbeddingCache

    try:
        cache = TextEmbeddingCache.load(args.cache, allow_nonfinite=args.allow_nonfinite)
        emb = cache.get(args.instruction)
    except (MissingInstructionError, OSError, ValueError) as exc:
        print(f"text-cache show: {exc}", file=sys.stderr)
        return 1
    n = cache.num_tokens(args.instruction)
    real = emb[:n]
    print(f"instruction: {args.instruction.strip()}")
    print(f"shape: {tuple(emb.shape)}  tokens: {n}  (rows {n}..{cache.max_length - 1} are zero)")
    print(f"mean {real.mean().item():.6f}  std {real.std().item() if real.numel() > 1 else 0.0:.6f}  "
          f"max|x| {real.abs().max().item():.6f}")
    return 0
