"""How local models batch sequences by length (the transformers backend and the bt-probe features); no torch."""

# A CPU forward takes sequences, sorted by length, until it holds this many tokens (padding included). A 576-wide
# linear layer (the default model's) runs at 90 % of its best rate from 128 rows in bf16 and 256 in float32 on the
# dev box, so more rows gain nothing there, while sequences padded to each other cost: 4 pairs of judge prompts per
# forward computed 40 % padding on 16 hh_helpful dev pairs. A GPU takes the caller's batch size.
CPU_ROWS = 256


def length_batches(lengths: list[int], size: int, rows: float | None = None,
                   longest_first: bool = True) -> list[list[int]]:
    """Index batches sorted by length (longest first, or shortest first) of at most `size` items; with `rows`, a
    batch also closes once its items padded to its longest hold `rows` tokens (so one item past `rows` is a batch
    of its own)."""
    batches: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i] if longest_first else lengths[i]):
        last = batches[-1] if batches else None
        if last and len(last) < size and (rows is None or len(last) * max(lengths[j] for j in last) < rows):
            last.append(i)
        else:
            batches.append([i])
    return batches
