// Personal data shown masked in lists, by the same rules as the server (service/pii.py):
// the family name's first character, a phone's first 3 and last 4 digits.

export function maskName(value: string | null | undefined): string {
  const v = (value ?? '').trim()
  if (!v) return ''
  return v.length <= 1 ? '*' : v[0] + '*'.repeat(v.length - 1)
}

export function maskPhone(value: string | null | undefined): string {
  const v = (value ?? '').trim()
  if (!v) return ''
  return v.length < 7 ? '*'.repeat(v.length) : v.slice(0, 3) + '*'.repeat(v.length - 7) + v.slice(-4)
}

/** An address without its house number: the street or village is enough to find the list entry. */
export function maskAddress(value: string | null | undefined): string {
  const v = (value ?? '').trim()
  return v.replace(/\d+\s*(号|栋|幢|单元|室|楼|组)/g, '*$1')
}
