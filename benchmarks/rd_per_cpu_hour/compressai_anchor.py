"""Issue 20's anchor: CompressAI's example training loop, to its defaults, for a wall-clock budget.

The same loop as CompressAI's ``examples/train.py`` (written here, not copied):
its ``MeanScaleHyperprior`` (``mbt2018-mean``) at plic's default width, one
lambda per model, loss ``lambda * 255^2 * MSE + bpp``, Adam at 1e-4 with a
separate Adam (1e-3) for the entropy bottleneck's quantiles, gradient norm
clipped at 1.0, batches of 16 random 256x256 crops, and ``ReduceLROnPlateau``
on a held-out loss after every epoch (one pass over the training images; the
held-out images are 5 % of the folder, never Kodak). It stops when the budget
is spent and writes ``checkpoint_best_loss.pth.tar`` as that script does,
which ``plic import`` then turns into a plic weight file:

    python benchmarks/rd_per_cpu_hour/compressai_anchor.py --data ../shared/datasets/train \\
        --lambda 0.0067 --minutes 60 --threads 1 --out runs/anchor-0.0067
    plic import compressai:mbt2018-mean --weights runs/anchor-0.0067/checkpoint_best_loss.pth.tar \\
        --lambda 0.0067 -q 3 -o runs/anchor-0.0067.safetensors
"""

from __future__ import annotations

import argparse
import math
import random
import time
from pathlib import Path

import torch
from PIL import Image
from torchvision.transforms import CenterCrop, RandomCrop, ToTensor


def load_images(folder: Path, crop: int):
    """Every image at least ``crop`` on each side (RandomCrop needs it), as RGB PIL images in memory."""
    suffixes = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
    out = []
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() in suffixes:
            im = Image.open(p).convert("RGB")
            if min(im.size) >= crop:
                out.append(im)
    return out


def rd_loss(out, x, lmbda):
    n, _, h, w = x.shape
    bpp = sum(torch.log(lk).sum() for lk in out["likelihoods"].values()) / (-math.log(2) * n * h * w)
    mse = torch.nn.functional.mse_loss(out["x_hat"], x)
    return lmbda * 255**2 * mse + bpp, bpp, mse


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--lambda", dest="lmbda", type=float, default=1e-2)
    ap.add_argument("--minutes", type=float, required=True, help="wall-clock budget")
    ap.add_argument("--N", type=int, default=64)
    ap.add_argument("--M", type=int, default=96)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--patch-size", type=int, default=256)
    ap.add_argument("--learning-rate", type=float, default=1e-4)
    ap.add_argument("--aux-learning-rate", type=float, default=1e-3)
    ap.add_argument("--clip-max-norm", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    import compressai.models

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    images = load_images(Path(args.data), args.patch_size)
    random.Random(args.seed).shuffle(images)
    n_test = max(1, len(images) // 20)
    test, train = images[:n_test], images[n_test:]
    crop, center, to_tensor = RandomCrop(args.patch_size), CenterCrop(args.patch_size), ToTensor()
    test_x = torch.stack([to_tensor(center(im)) for im in test])
    net = compressai.models.MeanScaleHyperprior(args.N, args.M)
    main_params = [p for n, p in net.named_parameters() if not n.endswith(".quantiles")]
    aux_params = [p for n, p in net.named_parameters() if n.endswith(".quantiles")]
    opt = torch.optim.Adam(main_params, lr=args.learning_rate)
    aux_opt = torch.optim.Adam(aux_params, lr=args.aux_learning_rate)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, "min")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.time() + 60 * args.minutes
    best, epoch, steps = math.inf, 0, 0
    log = open(out_dir / "log.csv", "w")
    log.write("epoch,steps,seconds,lr,test_loss,test_bpp,test_psnr\n")
    t0 = time.time()
    while time.time() < deadline:
        net.train()
        order = list(range(len(train)))
        random.shuffle(order)
        for i in range(0, len(order) - args.batch_size + 1, args.batch_size):
            x = torch.stack([to_tensor(crop(train[j])) for j in order[i:i + args.batch_size]])
            opt.zero_grad()
            aux_opt.zero_grad()
            loss, _, _ = rd_loss(net(x), x, args.lmbda)
            loss.backward()
            if args.clip_max_norm > 0:
                torch.nn.utils.clip_grad_norm_(net.parameters(), args.clip_max_norm)
            opt.step()
            net.aux_loss().backward()
            aux_opt.step()
            steps += 1
            if time.time() >= deadline:
                break
        net.eval()
        with torch.no_grad():
            loss, bpp, mse = rd_loss(net(test_x), test_x, args.lmbda)
        sched.step(float(loss))
        log.write(f"{epoch},{steps},{time.time() - t0:.0f},{opt.param_groups[0]['lr']:g},{float(loss):.5f},"
                  f"{float(bpp):.5f},{-10 * math.log10(float(mse)):.3f}\n")
        log.flush()
        if float(loss) < best:
            best = float(loss)
            net.update(force=True)
            state = {"epoch": epoch, "state_dict": net.state_dict(), "loss": torch.tensor(best)}
            tmp = out_dir / "checkpoint_best_loss.pth.tar.tmp"
            torch.save(state, tmp)
            tmp.replace(out_dir / "checkpoint_best_loss.pth.tar")
        epoch += 1
    print(f"{steps} steps, {epoch} epochs in {time.time() - t0:.0f} s; best held-out loss {best:.4f}")


if __name__ == "__main__":
    main()
