#!/usr/bin/env python3
"""Trains a small GPT on token batches read from stdin (`corpusql stream
--format u16 -o -`) and prints one JSON object of throughput figures.

Each batch is exactly `batch * seq` little-endian u16 ids (`seq` is the
streamed sequence length; the model sees `seq - 1` positions: inputs
`x = row[:-1]`, targets `y = row[1:]`). The time blocked reading stdin is
measured separately from the rest of the step, so the JSON says how much of
the step time the trainer spent waiting for data.

Self-contained: PyTorch and NumPy only, no network, no `transformers`.
Run by benches/gpu_run.sh; see `--help`.
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d, bias=False)
        self.ln2 = nn.LayerNorm(d)
        self.fc = nn.Linear(d, 4 * d, bias=False)
        self.out = nn.Linear(4 * d, d, bias=False)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q = q.view(b, t, self.heads, d // self.heads).transpose(1, 2)
        k = k.view(b, t, self.heads, d // self.heads).transpose(1, 2)
        v = v.view(b, t, self.heads, d // self.heads).transpose(1, 2)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, d))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self, vocab, ctx, d, layers, heads):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(ctx, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        self.head.weight = self.tok.weight  # tied
        self.apply(self._init)
        for n, p in self.named_parameters():
            if n.endswith("proj.weight") or n.endswith("out.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * layers))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def forward(self, idx, targets):
        t = idx.shape[1]
        pos = torch.arange(t, device=idx.device)
        x = self.tok(idx) + self.pos(pos)
        for b in self.blocks:
            x = b(x)
        logits = self.head(self.ln(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.reshape(-1))


class Reader:
    """Reads fixed-size batches from a binary stream, timing the blocking reads."""

    def __init__(self, f, batch, seq, itemsize):
        self.f = f
        self.batch = batch
        self.seq = seq
        self.nbytes = batch * seq * itemsize
        self.dtype = "<u2" if itemsize == 2 else "<u4"
        self.buf = bytearray(self.nbytes)
        self.wait = 0.0
        self.bytes = 0

    def next(self):
        """The next batch as an int64 [batch, seq] array, or None at the end."""
        view = memoryview(self.buf)
        got = 0
        t0 = time.perf_counter()
        while got < self.nbytes:
            n = self.f.readinto(view[got:])
            if not n:
                break
            got += n
        self.wait += time.perf_counter() - t0
        self.bytes += got
        if got < self.nbytes:
            return None
        a = np.frombuffer(self.buf, dtype=self.dtype).reshape(self.batch, self.seq)
        return torch.from_numpy(a.astype(np.int64))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=16, help="sequences per step")
    ap.add_argument("--seq", type=int, default=1025, help="streamed sequence length (model context + 1)")
    ap.add_argument("--steps", type=int, default=300, help="measured steps")
    ap.add_argument("--warmup", type=int, default=20, help="unmeasured steps first")
    ap.add_argument("--vocab", type=int, default=257, help="ids in the stream (bytes tokenizer: 257)")
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--d", type=int, default=384)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--lr", type=float, default=6e-4)
    ap.add_argument("--u32", action="store_true", help="the stream is u32 ids")
    ap.add_argument("--sync", action="store_true", help="synchronize the GPU after every step (no overlap of reading and compute)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    ap.add_argument("--extra", default="{}", help="JSON object merged into the output")
    a = ap.parse_args()

    if not torch.cuda.is_available():
        print(json.dumps({"error": "CUDA is not available", "torch_version": torch.__version__}))
        return 2
    dev = torch.device("cuda")
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    vocab = (a.vocab + 63) // 64 * 64
    ctx = a.seq - 1
    model = GPT(vocab, ctx, a.d, a.layers, a.heads).to(dev)
    params = sum(p.numel() for p in model.parameters())
    try:
        opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
    except (TypeError, RuntimeError):
        opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=0.1)
    step_fn = torch.compile(model) if a.compile else model

    reader = Reader(sys.stdin.buffer, a.batch, a.seq, 4 if a.u32 else 2)
    losses = []
    max_id = 0
    done = 0
    t_start = None
    wait_at_start = 0.0
    step_times = []
    total = a.warmup + a.steps
    for step in range(total):
        if step == a.warmup:
            torch.cuda.synchronize()
            t_start = time.perf_counter()
            wait_at_start = reader.wait
        t0 = time.perf_counter()
        cpu = reader.next()
        if cpu is None:
            break
        if step % 50 == 0:
            max_id = max(max_id, int(cpu.max()))
        batch = cpu.pin_memory().to(dev, non_blocking=True)
        x, y = batch[:, :-1], batch[:, 1:]
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = step_fn(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if a.sync:
            torch.cuda.synchronize()
        if step % 50 == 0 or step == total - 1:
            losses.append((step, float(loss.item())))
        if step >= a.warmup:
            step_times.append(time.perf_counter() - t0)
            done += 1
    torch.cuda.synchronize()
    t_end = time.perf_counter()
    if t_start is None or done == 0:
        print(json.dumps({"error": "the stream ended before the measured steps", "bytes_read": reader.bytes}))
        return 1
    wall = t_end - t_start
    wait = reader.wait - wait_at_start
    tokens = done * a.batch * a.seq
    out = {
        "device": torch.cuda.get_device_name(0),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "model": {"layers": a.layers, "d": a.d, "heads": a.heads, "ctx": ctx, "vocab": vocab, "params": params},
        "batch": a.batch,
        "seq": a.seq,
        "steps_measured": done,
        "warmup_steps": a.warmup,
        "sync_every_step": a.sync,
        "compiled": a.compile,
        "tokens_consumed": tokens,
        "tokens_per_s": tokens / wall,
        "wall_s": wall,
        "mean_step_ms": 1000 * wall / done,
        "median_step_cpu_ms": 1000 * sorted(step_times)[len(step_times) // 2],
        "data_wait_s": wait,
        "data_wait_fraction": wait / wall,
        "mean_data_wait_ms": 1000 * wait / done,
        "max_token_id_seen": max_id,
        "loss_first": losses[0][1],
        "loss_last": losses[-1][1],
        "losses": losses,
        "peak_gpu_mem_gib": torch.cuda.max_memory_allocated() / 2**30,
    }
    out.update(json.loads(a.extra))
    print(json.dumps(out, indent=1))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    rc = main()
    sys.stdout.flush()
    # Do not wait for the producer: stdin may still be open.
    os._exit(rc)
