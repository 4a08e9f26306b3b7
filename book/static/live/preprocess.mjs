// The course's image preprocessing (course_utils/preprocess.py) in JavaScript, step for step.
//
// Taught in notebooks/10_in_the_browser.ipynb, which proves it against the Python version:
// decoded pixels against Pillow's, and the final tensor against preprocess(). Every step but the
// decoding is plain arithmetic on arrays, so it runs the same in a page, a worker or Node.js.
//
// An image is {width, height, data}: data holds 4 bytes per pixel (RGBA) after decoding and
// 3 bytes per pixel (RGB) after toRgb(), row after row.

// Pillow's decompression-bomb threshold, as course_utils.preprocess.MAX_PIXELS (a test checks both).
export const MAX_PIXELS = 89_478_485;

// The fixed-point precision of Pillow's 8-bit resampling (libImaging/Resample.c).
const PRECISION_BITS = 32 - 8 - 2;
// The fixed-point precision of Pillow's alpha compositing (libImaging/AlphaComposite.c).
const ALPHA_PRECISION_BITS = 7;

/** An image that cannot be used; the message names the file, the reason and what to do. */
export class ImageReadError extends Error {
  constructor(name, reason, advice) {
    super(`Cannot read image ${name}: ${reason}. ${advice}`);
    this.name = 'ImageReadError';
    this.reason = reason;
  }
}

/** Throw ImageReadError when a width x height image has more than maxPixels pixels. */
export function checkPixels(width, height, name, maxPixels = MAX_PIXELS) {
  if (width * height > maxPixels) {
    throw new ImageReadError(
      name,
      `too many pixels (${width}x${height} = ${(width * height).toLocaleString('en')}; ` +
        `the limit is ${maxPixels.toLocaleString('en')})`,
      'Downscale the image before classifying it.');
  }
}

const bigEndian16 = (b, i) => (b[i] << 8) | b[i + 1];
const bigEndian32 = (b, i) => ((b[i] << 24) >>> 0) + (b[i + 1] << 16) + (b[i + 2] << 8) + b[i + 3];
const littleEndian16 = (b, i) => b[i] | (b[i + 1] << 8);
const littleEndian24 = (b, i) => b[i] | (b[i + 1] << 8) | (b[i + 2] << 16);
const startsWith = (b, text, at = 0) => [...text].every((c, i) => b[at + i] === c.charCodeAt(0));

/** The size of a JPEG: the first start-of-frame marker's height and width. */
function jpegSize(b) {
  let i = 2;
  while (i + 9 < b.length && b[i] === 0xff) {
    const marker = b[i + 1];
    if (marker === 0xff) { i += 1; continue; }  // fill byte
    if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
      return [bigEndian16(b, i + 7), bigEndian16(b, i + 5)];
    }
    if (marker === 0xda) return null;  // the image data starts before any frame header
    i += 2 + bigEndian16(b, i + 2);
  }
  return null;
}

/**
 * The [width, height] an image file declares in its header (PNG, JPEG, GIF, BMP, WebP), or null
 * for another format. Nothing is decoded: this is how a "decompression bomb" (a small file that
 * declares an enormous image) is caught before it is decoded, as Pillow's check does.
 */
export function imageSize(b) {
  if (startsWith(b, '\x89PNG\r\n\x1a\n') && startsWith(b, 'IHDR', 12)) {
    return [bigEndian32(b, 16), bigEndian32(b, 20)];
  }
  if (b[0] === 0xff && b[1] === 0xd8) return jpegSize(b);
  if (startsWith(b, 'GIF8')) return [littleEndian16(b, 6), littleEndian16(b, 8)];
  if (startsWith(b, 'BM') && b.length >= 26) {
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    return [Math.abs(view.getInt32(18, true)), Math.abs(view.getInt32(22, true))];
  }
  if (startsWith(b, 'RIFF') && startsWith(b, 'WEBP', 8)) {
    if (startsWith(b, 'VP8X', 12)) return [1 + littleEndian24(b, 24), 1 + littleEndian24(b, 27)];
    if (startsWith(b, 'VP8 ', 12)) {
      return [littleEndian16(b, 26) & 0x3fff, littleEndian16(b, 28) & 0x3fff];
    }
    if (startsWith(b, 'VP8L', 12)) {
      const bits = b[21] | (b[22] << 8) | (b[23] << 16) | (b[24] << 24);
      return [1 + (bits & 0x3fff), 1 + ((bits >>> 14) & 0x3fff)];
    }
  }
  return null;
}

/** The size of an image in a format imageSize() does not read, from the browser's own decoder. */
async function browserSize(blob, name) {
  const url = URL.createObjectURL(blob);
  const img = new Image();
  try {
    await new Promise((resolve, reject) => {
      img.onload = resolve;
      img.onerror = reject;
      img.src = url;
    });
  } catch {
    throw new ImageReadError(
      name, 'not an image format the browser recognises (corrupt, or another kind of file)',
      'Open it in an image viewer; choose another file.');
  } finally {
    URL.revokeObjectURL(url);
  }
  return [img.naturalWidth, img.naturalHeight];
}

/**
 * Step 1: decode a Blob (or File) into RGBA pixels, as Pillow's load_rgb() decodes a file.
 *
 * The size in the header is checked first (imageSize), so that a small file declaring an
 * enormous image is refused before its pixels are decoded. createImageBitmap then decodes with the EXIF
 * orientation applied, and without the two changes a browser makes to show an image on a
 * screen: converting its colours to the screen's colour space, and multiplying each colour by
 * its alpha. The pixels are read back from a canvas the size of the image (no resizing).
 */
export async function decodeRgba(blob, name = 'upload', maxPixels = MAX_PIXELS) {
  if (!blob || blob.size === 0) {
    throw new ImageReadError(name, 'the file is empty (0 bytes)', 'Choose the image again.');
  }
  const bytes = new Uint8Array(await blob.arrayBuffer());
  const [width, height] = imageSize(bytes) ?? await browserSize(blob, name);
  checkPixels(width, height, name, maxPixels);
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, {
      imageOrientation: 'from-image',
      colorSpaceConversion: 'none',
      premultiplyAlpha: 'none',
    });
  } catch (error) {
    throw new ImageReadError(name, `the image data is damaged (${error.message})`,
      'Replace it with an intact copy.');
  }
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = canvas.getContext('2d', { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
  return { width: canvas.width, height: canvas.height, data };
}

/**
 * Step 2: RGBA -> RGB, compositing transparent pixels onto an opaque background (white by
 * default), with the integer arithmetic of Pillow's Image.alpha_composite. Opaque pixels come
 * out unchanged, fully transparent ones take the background colour.
 */
export function toRgb(image, background = [255, 255, 255]) {
  const { width, height, data } = image;
  const out = new Uint8Array(width * height * 3);
  const one = 1 << ALPHA_PRECISION_BITS;
  for (let i = 0, o = 0; i < data.length; i += 4, o += 3) {
    const alpha = data[i + 3];
    if (alpha === 0) {
      out.set(background, o);
      continue;
    }
    // The background is opaque, so the composite's alpha is 255 * 255 (in Pillow's units).
    const coef1 = Math.floor((alpha * 255 * 255 * one) / (255 * 255));
    const coef2 = 255 * one - coef1;
    for (let c = 0; c < 3; c++) {
      const sum = data[i + c] * coef1 + background[c] * coef2 + (0x80 << ALPHA_PRECISION_BITS);
      out[o + c] = (((sum >> 8) + sum) >> 8) >> ALPHA_PRECISION_BITS;  // Pillow's SHIFTFORDIV255
    }
  }
  return { width, height, data: out };
}

/** The (width, height) after scaling the short side to `size`; the long side is truncated. */
export function resizedShortSideSize(width, height, size = 256) {
  if (width <= height) {
    return [size, Math.trunc((size * height) / width)];
  }
  return [Math.trunc((size * width) / height), size];
}

function bilinear(x) {
  const distance = Math.abs(x);
  return distance < 1 ? 1 - distance : 0;
}

/**
 * Pillow's resampling weights from inSize to outSize pixels along one axis, in fixed point.
 *
 * For each output pixel: the input pixels under the filter (whose support widens with the
 * scale when shrinking: that is the antialiasing), their weights normalised to sum to one,
 * then rounded to integers with PRECISION_BITS fractional bits. The arithmetic and its order
 * are Pillow's precompute_coeffs() and normalize_coeffs_8bpc(), in the same doubles.
 */
export function resampleCoefficients(inSize, outSize) {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1.0);
  const support = 1.0 * filterScale;  // the bilinear filter's support is 1
  const kernelSize = Math.ceil(support) * 2 + 1;
  const invFilterScale = 1.0 / filterScale;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * kernelSize);
  const raw = new Float64Array(kernelSize);
  for (let out = 0; out < outSize; out++) {
    const center = (out + 0.5) * scale;
    const first = Math.max(Math.trunc(center - support + 0.5), 0);
    const count = Math.min(Math.trunc(center + support + 0.5), inSize) - first;
    let total = 0.0;
    for (let k = 0; k < count; k++) {
      raw[k] = bilinear((k + first - center + 0.5) * invFilterScale);
      total += raw[k];
    }
    for (let k = 0; k < count; k++) {
      const w = total !== 0.0 ? raw[k] / total : raw[k];
      const fixed = w * (1 << PRECISION_BITS);
      weights[out * kernelSize + k] = Math.trunc(w < 0 ? fixed - 0.5 : fixed + 0.5);
    }
    bounds[out * 2] = first;
    bounds[out * 2 + 1] = count;
  }
  return { kernelSize, bounds, weights };
}

function clip8(sum) {
  return Math.min(255, Math.max(0, sum >> PRECISION_BITS));
}

/** One resampling pass of an RGB image along x (horizontal) or y, as Pillow's 8-bit passes. */
function resamplePass(image, outSize, horizontal) {
  const { width, height, data } = image;
  const { kernelSize, bounds, weights } = resampleCoefficients(horizontal ? width : height, outSize);
  const outWidth = horizontal ? outSize : width;
  const outHeight = horizontal ? height : outSize;
  const out = new Uint8Array(outWidth * outHeight * 3);
  const step = horizontal ? 3 : width * 3;  // from one input pixel to the next along the axis
  const half = 1 << (PRECISION_BITS - 1);  // rounds the fixed-point sum to nearest
  for (let y = 0; y < outHeight; y++) {
    for (let x = 0; x < outWidth; x++) {
      const along = horizontal ? x : y;
      const first = bounds[along * 2];
      const count = bounds[along * 2 + 1];
      const base = horizontal ? (y * width + first) * 3 : (first * width + x) * 3;
      const o = (y * outWidth + x) * 3;
      for (let c = 0; c < 3; c++) {
        let sum = half;
        for (let k = 0; k < count; k++) {
          sum += data[base + k * step + c] * weights[along * kernelSize + k];
        }
        out[o + c] = clip8(sum);
      }
    }
  }
  return { width: outWidth, height: outHeight, data: out };
}

/**
 * Step 3: scale an RGB image so that its short side is `size`, with Pillow's antialiased
 * BILINEAR filter: Image.resize(new_size, Image.Resampling.BILINEAR), bit for bit.
 *
 * Pillow resizes in two passes, each rounding to 8 bits; it runs the horizontal pass first
 * unless the height shrinks more than twice as much as the width. Same order here, since the
 * rounding between the passes depends on it.
 */
export function resizeShortSide(image, size = 256, maxPixels = MAX_PIXELS) {
  const [width, height] = resizedShortSideSize(image.width, image.height, size);
  if (width * height > maxPixels) {
    throw new Error(`A ${image.width}x${image.height} image would become ${width}x${height} pixels: ` +
      'its aspect ratio is too extreme to resize safely. Crop it to the part you want classified.');
  }
  const shrinkY = image.height - height;
  const horizontalFirst = !(shrinkY > 0 && shrinkY > (image.width - width) * 2);
  let result = image;
  const passes = horizontalFirst ? [true, false] : [false, true];
  for (const horizontal of passes) {
    const current = horizontal ? result.width : result.height;
    const target = horizontal ? width : height;
    if (current !== target) {
      result = resamplePass(result, target, horizontal);
    }
  }
  return result;
}

/** Python's round(): halves go to the even neighbour (round(58.5) == 58), as torchvision uses. */
function roundHalfEven(value) {
  const rounded = Math.round(value);
  return Math.abs(value % 1) === 0.5 && rounded % 2 !== 0 ? rounded - 1 : rounded;
}

/** The [left, top, right, bottom] box of the central size x size square, as torchvision's CenterCrop. */
export function centerCropBox(width, height, size = 224) {
  const left = size > width ? -Math.floor((size - width) / 2) : roundHalfEven((width - size) / 2);
  const top = size > height ? -Math.floor((size - height) / 2) : roundHalfEven((height - size) / 2);
  return [left, top, left + size, top + size];
}

/** Step 4a: cut the central size x size square; an image smaller than that is padded with black. */
export function centerCrop(image, size = 224) {
  const [left, top] = centerCropBox(image.width, image.height, size);
  const out = new Uint8Array(size * size * 3);  // zero: black padding
  for (let y = 0; y < size; y++) {
    const sourceY = y + top;
    if (sourceY < 0 || sourceY >= image.height) continue;
    for (let x = 0; x < size; x++) {
      const sourceX = x + left;
      if (sourceX < 0 || sourceX >= image.width) continue;
      const from = (sourceY * image.width + sourceX) * 3;
      out.set(image.data.subarray(from, from + 3), (y * size + x) * 3);
    }
  }
  return { width: size, height: size, data: out };
}

/**
 * Step 4b: RGB bytes -> float32 in channel-first (C, H, W) order: divide by 255, subtract the
 * mean, divide by the standard deviation, each step rounded to float32 as NumPy rounds it.
 */
export function toNormalizedChw(image, mean, std, scale = 1 / 255) {
  const f32 = Math.fround;
  const divisor = f32(1 / scale);
  const plane = image.width * image.height;
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    const m = f32(mean[c]);
    const s = f32(std[c]);
    for (let i = 0; i < plane; i++) {
      out[c * plane + i] = f32(f32(image.data[i * 3 + c] / divisor) - m) / s;
    }
  }
  return out;
}

/**
 * Steps 3 and 4 with the constants of a model's preprocessing spec (its metadata_props): an RGB
 * image -> {cropped, tensor}: the crop the model sees, and its 3 x crop x crop float32 values,
 * ready for a [1, 3, crop, crop] tensor.
 */
export function preprocess(rgb, spec) {
  const cropped = centerCrop(resizeShortSide(rgb, spec.resize_short_side), spec.center_crop);
  return { cropped, tensor: toNormalizedChw(cropped, spec.mean, spec.std, spec.scale) };
}
