import { describe, expect, it } from 'vitest'
import { allPages, type Page } from './pages'

// A list of `n` numbers served `size` at a time, with the cursor naming the next offset.
function served(n: number, size: number) {
  const asked: (string | undefined)[] = []
  const fetchPage = async (cursor: string | undefined): Promise<Page<number>> => {
    asked.push(cursor)
    const from = cursor ? Number(cursor) : 0
    const items = Array.from({ length: Math.max(0, Math.min(size, n - from)) }, (_, k) => from + k)
    return { items, next_cursor: from + size < n ? String(from + size) : null }
  }
  return { fetchPage, asked }
}

describe('allPages', () => {
  it('follows the cursors to the end of the list, in order', async () => {
    const { fetchPage, asked } = served(250, 100)
    const got = await allPages(fetchPage)
    expect(got.items).toEqual(Array.from({ length: 250 }, (_, k) => k))
    expect(got.truncated).toBe(false)
    expect(asked).toEqual([undefined, '100', '200'])
  })

  it('stops after maxPages and says the list went on', async () => {
    const { fetchPage, asked } = served(1000, 100)
    const got = await allPages(fetchPage, { maxPages: 3 })
    expect(got.items.length).toBe(300)
    expect(got.truncated).toBe(true)
    expect(asked.length).toBe(3)
  })

  it('a list that ends exactly on the last page read is whole', async () => {
    const got = await allPages(served(300, 100).fetchPage, { maxPages: 3 })
    expect(got).toMatchObject({ truncated: false })
    expect(got.items.length).toBe(300)
  })

  it('stops early once `until` holds', async () => {
    const { fetchPage, asked } = served(1000, 100)
    const got = await allPages(fetchPage, { until: (items) => items.includes(150) })
    expect(got.items.length).toBe(200)
    expect(got.truncated).toBe(false)
    expect(asked.length).toBe(2)
  })

  it('an empty list is one request', async () => {
    const { fetchPage, asked } = served(0, 100)
    expect(await allPages(fetchPage)).toEqual({ items: [], truncated: false })
    expect(asked.length).toBe(1)
  })
})
