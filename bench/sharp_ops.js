// sharp doing the recipe operations bench/ops.py compares, in-process, in sharp_bench.js's shape.
// usage: node sharp_ops.js <op> <file> <iters> <concurrency> [outfile]
// ops: cover400 (400×400 cover, centre), smart400 (400×400 cover, position 'attention'),
//      blur5 (1200 px wide, blur sigma 5), sharpen1 (1200 px wide, sharpen sigma 1); JPEG q80;
//      anim_webp240, anim_gif240: every frame of an animation 240 px wide, as WebP q80 or GIF
//      (sharp's defaults), for bench/animated.py.
const sharp = require('sharp');
const fs = require('fs');
const [op, file, itersS, concS, outfile] = process.argv.slice(2);
const iters = parseInt(itersS || '5', 10);
sharp.cache(false);
sharp.concurrency(parseInt(concS || '1', 10));
const buf = fs.readFileSync(file);
function pipe() {
  if (op.startsWith('anim_')) {
    const p = sharp(buf, { animated: true, pages: -1 }).resize({ width: 240 });
    return (op === 'anim_gif240' ? p.gif() : p.webp({ quality: 80 })).toBuffer({ resolveWithObject: true });
  }
  let p = sharp(buf).rotate();
  if (op === 'cover400') p = p.resize({ width: 400, height: 400, fit: 'cover', position: 'centre' });
  else if (op === 'smart400') p = p.resize({ width: 400, height: 400, fit: 'cover', position: 'attention' });
  else if (op === 'gallery') return p.resize({ width: 240, height: 240, fit: 'cover', position: 'attention' })
    .jpeg({ quality: 75 }).toBuffer({ resolveWithObject: true });
  else if (op === 'blur5') p = p.resize({ width: 1200 }).blur(5);
  else if (op === 'sharpen1') p = p.resize({ width: 1200 }).sharpen({ sigma: 1 });
  else throw new Error('bad op ' + op);
  return p.jpeg({ quality: 80 }).toBuffer({ resolveWithObject: true });
}
(async () => {
  let r = await pipe();
  if (outfile) fs.writeFileSync(outfile, r.data);
  const ts = [];
  for (let i = 0; i < iters; i++) {
    const s = process.hrtime.bigint();
    r = await pipe();
    ts.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  ts.sort((a, b) => a - b);
  const med = ts.length % 2 ? ts[(ts.length - 1) / 2] : (ts[ts.length / 2 - 1] + ts[ts.length / 2]) / 2;
  console.log(JSON.stringify({ tool: 'sharp', op, median_ms: +med.toFixed(2), out_bytes: r.data.length,
    out_w: r.info.width, out_h: r.info.height, maxrss_kb: process.resourceUsage().maxRSS }));
})();
