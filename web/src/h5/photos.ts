// Photos are made smaller on the phone before they are sent: at most 1600 px on the long
// side, JPEG at quality 0.8 (a 12-megapixel photo of 4 MB becomes about 300 KB).
import { absolute, makeAuthFetch } from '@api/session'
import { ApiError } from '@api/problems'

export const MAX_SIDE = 1600

/** The size to draw a w x h image at so that neither side exceeds max (never enlarged). */
export function fitWithin(w: number, h: number, max = MAX_SIDE): { width: number; height: number } {
  const scale = Math.min(1, max / Math.max(w, h))
  return { width: Math.round(w * scale), height: Math.round(h * scale) }
}

export async function shrinkPhoto(file: File, max = MAX_SIDE): Promise<Blob> {
  let bitmap: ImageBitmap
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' })
  } catch {
    return file // a format the browser cannot draw (HEIC on most phones' browsers): sent as it is
  }
  const { width, height } = fitWithin(bitmap.width, bitmap.height, max)
  const canvas = document.createElement('canvas')
  canvas.width = width
  canvas.height = height
  const g = canvas.getContext('2d')
  if (!g) return file
  g.drawImage(bitmap, 0, 0, width, height)
  bitmap.close()
  const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, 'image/jpeg', 0.8))
  return blob && blob.size < file.size ? blob : file
}

const authFetch = makeAuthFetch()

/** Shrink, then POST /api/v1/uploads; returns the upload id for the case's `photos`. */
export async function uploadPhoto(file: File): Promise<{ id: string; bytes: number }> {
  const blob = await shrinkPhoto(file)
  const body = new FormData()
  body.append('file', blob, file.name.replace(/\.\w+$/, '') + '.jpg')
  const resp = await authFetch(new Request(absolute('/api/v1/uploads'), { method: 'POST', body }))
  const data = await resp.json().catch(() => ({}))
  if (!resp.ok) throw ApiError.from(resp.status, data)
  return { id: (data as { id: string }).id, bytes: blob.size }
}
