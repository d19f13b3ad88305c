"""`make bench`: every benchmark, each with its same-run baseline and ratio."""

from __future__ import annotations

from bench import (
    bench_chunk_path,
    bench_codec,
    bench_fuzz,
    bench_kills,
    bench_lbx,
    bench_line_stamps,
    bench_load,
    bench_loop_stall,
    bench_outage_memory,
    bench_port,
    bench_scale_out,
)


def main() -> None:
    for module in (
        bench_codec,
        bench_lbx,
        bench_port,
        bench_loop_stall,
        bench_line_stamps,
        bench_chunk_path,
        bench_load,
        bench_scale_out,
        bench_fuzz,
        bench_outage_memory,
        bench_kills,
    ):
        for line in module.main():
            print(line, flush=True)


if __name__ == "__main__":
    main()
