/**
 * Photos from the phone camera are 3–12 MB; on a mobile network they are
 * scaled down before they enter the outbox: longest side at most 1600 px,
 * JPEG quality 0.8 (≈150–400 KB), EXIF orientation applied by the decoder.
 */
export const MAX_SIDE = 1600;
export const QUALITY = 0.8;

export async function compressPhoto(file: Blob, maxSide = MAX_SIDE, quality = QUALITY): Promise<Blob> {
  const bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  const scale = Math.min(1, maxSide / Math.max(bitmap.width, bitmap.height));
  const w = Math.max(1, Math.round(bitmap.width * scale));
  const h = Math.max(1, Math.round(bitmap.height * scale));
  const canvas = document.createElement('canvas');
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new Error('no 2d canvas');
  ctx.drawImage(bitmap, 0, 0, w, h);
  bitmap.close();
  const out = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, 'image/jpeg', quality));
  if (!out) throw new Error('could not encode JPEG');
  // A small JPEG may grow when re-encoded: keep whichever is smaller.
  return file.type === 'image/jpeg' && file.size <= out.size ? file : out;
}
