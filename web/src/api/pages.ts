// Reading a cursor-paged list to its end, for views that must show all of it (the alert
// board's open urgent cases): pages are fetched one after another until next_cursor is
// null or `maxPages` were read, and the answer says whether the list went on beyond them.

export type Page<T> = { items?: T[] | null; next_cursor?: string | null }

export type AllPages<T> = {
  items: T[]
  /** True when `maxPages` pages were read and the list still had a next page. */
  truncated: boolean
}

export async function allPages<T>(
  fetchPage: (cursor: string | undefined) => Promise<Page<T>>,
  { maxPages = 10, until }: { maxPages?: number; until?: (items: T[]) => boolean } = {},
): Promise<AllPages<T>> {
  const items: T[] = []
  let cursor: string | undefined
  for (let read = 0; read < maxPages; read++) {
    const page = await fetchPage(cursor)
    items.push(...(page.items ?? []))
    cursor = page.next_cursor ?? undefined
    if (!cursor || (until && until(items))) return { items, truncated: false }
  }
  return { items, truncated: true }
}
