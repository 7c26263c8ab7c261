#!/usr/bin/env python3
"""How far apart the perceptual hashes of one picture's copies and of different pictures are.

For every photo in ../shared/photos: `catg inspect` it, make a half-size quality-60 JPEG copy
with `catg render`, inspect the copy, and print the Hamming distance between their `phash`es;
then the smallest distance between any two different pictures (the files the photo manifest
marks as derived from another are the same picture, and are left out of that count).

    python3 bench/near_duplicates.py [path/to/catg]     (default: target/release/catg)
"""
import itertools
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ROOT.parent / "shared" / "photos"
catg = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "target" / "release" / "catg")


def inspect(path):
    out = subprocess.run([catg, "inspect", str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def distance(a, b):
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def main():
    photos = sorted(p for p in PHOTOS.iterdir() if p.suffix in (".jpg", ".png"))
    hashes, copies = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for photo in photos:
            info = inspect(photo)
            hashes[photo.name] = info["phash"]
            copy = Path(tmp) / (photo.stem + "-half-q60.jpg")
            recipe = f"w={max(1, info['width'] // 2)}&fit=inside&fmt=jpeg&q=60"
            subprocess.run([catg, "render", str(photo), "--recipe", recipe, "-o", str(copy)],
                           capture_output=True, check=True)
            d = distance(info["phash"], inspect(copy)["phash"])
            copies.append(d)
            print(f"{photo.name:45} {info['phash']}  half-size q60 copy: {d:2} bits")
    derived = {"Wine_rot6_derived.jpg", "seeding_q90_baseline_derived.jpg", "aitzgorri_derived.png"}
    originals = [n for n in hashes if n not in derived]
    pairs = sorted((distance(hashes[a], hashes[b]), a, b) for a, b in itertools.combinations(originals, 2))
    print(f"copies: at most {max(copies)} bits (mean {sum(copies) / len(copies):.1f})")
    print(f"different pictures ({len(pairs)} pairs): at least {pairs[0][0]} bits "
          f"({pairs[0][1]} / {pairs[0][2]}), median {pairs[len(pairs) // 2][0]}")
    for name, source in [("Wine_rot6_derived.jpg", "Wine_by_Jakkub_Mede.jpg"),
                         ("seeding_q90_baseline_derived.jpg", "seeding_by_Clements_Engelhardt.jpg")]:
        print(f"{name} vs {source}: {distance(hashes[name], hashes[source])} bits")


if __name__ == "__main__":
    main()
