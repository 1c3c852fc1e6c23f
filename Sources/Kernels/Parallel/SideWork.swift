// Sharing one ComputePool call between a product's tiles and small side jobs (`SideWork`,
// `forEachTile`), and the pointer wrapper worker closures write through (`UnsafeSendable`).

/// Work run in the same pool call as a product's tiles and claimed before them, so that a few small
/// independent jobs (one sequence's LoRA terms) share both threads with the product instead of
/// running alone on one thread before or after it. It must not touch the product's output.
public struct SideWork {
    public let count: Int
    public let body: (Int) -> Void

    public init(count: Int, body: @escaping (Int) -> Void) {
        self.count = count
        self.body = body
    }

    /// Runs every item on `pool` (which runs them on the caller when it has no workers or one item),
    /// or on the caller without a pool.
    public func run(on pool: ComputePool?) {
        if let pool { pool.parallelFor(count, body) } else { for i in 0..<count { body(i) } }
    }
}

/// Runs `side`'s items, then `body(tile, thread)` for `tiles` tiles, on `pool`, or serially on the caller.
@inline(__always)
func forEachTile(_ tiles: Int, pool: ComputePool?, alongside side: SideWork? = nil, _ body: (Int, Int) -> Void) {
    let extra = side?.count ?? 0
    func item(_ i: Int, _ thread: Int) {
        if i < extra { side!.body(i) } else { body(i - extra, thread) }
    }
    if let pool {
        pool.parallelFor(extra + tiles, item)
    } else {
        for i in 0..<(extra + tiles) { item(i, 0) }
    }
}

/// A pointer passed to worker closures that write disjoint parts of it.
public struct UnsafeSendable<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}
