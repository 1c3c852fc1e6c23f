// Per-sequence attention state: the keys and values of every position seen so far, per layer.
//
// Owned by whoever runs the sequence (one thread at a time); never shared. Storage grows in
// chunks up to the context limit, so a short sequence does not pay for a long context. Values are
// rounded to f16 on the way in by default, because llama.cpp's default cache type is F16
// (FORMATS.md §2.5) and matching its numerics keeps our logits close to its goldens.

import Foundation
import Kernels

/// A byte budget that KV caches draw their storage from (DESIGN.md: a configured KV budget, 1 GiB by
/// default in the daemon). Thread-safe: caches of different sequences grow from different threads.
public final class KVBudget: @unchecked Sendable {
    // @unchecked: `used` is only touched under `lock`.
    public let capacityBytes: Int
    private var used = 0
    private let lock = NSLock()

    public init(capacityBytes: Int) {
        self.capacityBytes = capacityBytes
    }

    public var usedBytes: Int { lock.withLock { used } }

    /// Takes `bytes` from the budget, or returns false when they are not there.
    func acquire(_ bytes: Int) -> Bool {
        lock.withLock {
            guard used + bytes <= capacityBytes else { return false }
            used += bytes
            return true
        }
    }

    func release(_ bytes: Int) {
        lock.withLock { used -= bytes }
    }
}

public final class KVCache {
    public let layerCount: Int
    public let kvDim: Int
    /// The most positions this sequence may hold.
    public let contextLimit: Int
    public let roundToF16: Bool
    /// Where the storage comes from; nil: unbounded (single-sequence commands).
    public let budget: KVBudget?
    /// Positions filled so far.
    public private(set) var count = 0
    private(set) var capacity = 0
    // keys[l] and values[l]: capacity × kvDim, position-major.
    private var keys: [UnsafeMutablePointer<Float>] = []
    private var values: [UnsafeMutablePointer<Float>] = []

    public init(config: LlamaConfig, contextLimit: Int, roundToF16: Bool = true, budget: KVBudget? = nil) {
        layerCount = config.layerCount
        kvDim = config.kvDim
        self.contextLimit = contextLimit
        self.roundToF16 = roundToF16
        self.budget = budget
    }

    deinit {
        for p in keys { p.deallocate() }
        for p in values { p.deallocate() }
        budget?.release(byteCount)
    }

    /// Bytes needed for `positions` positions.
    func bytes(positions: Int) -> Int { 2 * layerCount * positions * kvDim * MemoryLayout<Float>.size }

    /// Bytes held by this cache.
    public var byteCount: Int { bytes(positions: capacity) }

    /// Bytes this cache may still draw from its budget before it reaches `contextLimit`.
    public var growthBytes: Int { bytes(positions: contextLimit - capacity) }

    /// Throws when `n` more positions would overflow the context.
    public func checkRoom(_ n: Int) throws {
        guard count + n <= contextLimit else { throw LlamaError.contextFull(needed: count + n, limit: contextLimit) }
    }

    /// Makes room for `n` more positions, or throws when the context would overflow.
    public func reserve(_ n: Int) throws {
        try checkRoom(n)
        let needed = count + n
        guard needed > capacity else { return }
        var newCapacity = min(contextLimit, max(needed, capacity * 2, 64))
        if let budget {
            // Grow by doubling while the budget allows, else by exactly what is needed.
            if !budget.acquire(bytes(positions: newCapacity - capacity)) {
                newCapacity = needed
                guard budget.acquire(bytes(positions: newCapacity - capacity)) else {
                    throw LlamaError.kvBudgetExhausted(needed: bytes(positions: needed - capacity),
                                                       available: budget.capacityBytes - budget.usedBytes)
                }
            }
        }
        func grow(_ old: [UnsafeMutablePointer<Float>]) -> [UnsafeMutablePointer<Float>] {
            (0..<layerCount).map { l in
                let p = UnsafeMutablePointer<Float>.allocate(capacity: newCapacity * kvDim)
                if l < old.count { p.update(from: old[l], count: count * kvDim) }
                return p
            }
        }
        let newKeys = grow(keys), newValues = grow(values)
        for p in keys { p.deallocate() }
        for p in values { p.deallocate() }
        keys = newKeys
        values = newValues
        capacity = newCapacity
    }

    /// Stores `n` positions of keys and values for `layer`, starting at position `count`.
    func store(layer: Int, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>, positions n: Int) {
        precondition(count + n <= capacity, "reserve before store")
        let dk = keys[layer] + count * kvDim, dv = values[layer] + count * kvDim
        for i in 0..<(n * kvDim) {
            dk[i] = roundToF16 ? roundedToF16(k[i]) : k[i]
            dv[i] = roundToF16 ? roundedToF16(v[i]) : v[i]
        }
    }

    /// Marks `n` stored positions as part of the sequence (after every layer has stored them).
    func commit(_ n: Int) { count += n }

    /// Fills an empty cache with the first `count` positions of `source` (a prefix cache hit: the
    /// keys and values of a shared prompt prefix are copied instead of recomputed). Both caches must
    /// belong to the same model; the copy is exact, so the sequence continues as if it had run the
    /// prefix itself.
    public func copyPrefix(from source: KVCache, count n: Int) throws {
        precondition(count == 0, "copyPrefix into a cache that already holds positions")
        precondition(source.layerCount == layerCount && source.kvDim == kvDim, "copyPrefix across models")
        precondition(n >= 0 && n <= source.count, "copyPrefix of more positions than the source holds")
        try reserve(n)
        for l in 0..<layerCount {
            keys[l].update(from: source.keys[l], count: n * kvDim)
            values[l].update(from: source.values[l], count: n * kvDim)
        }
        count = n
    }

    /// Drops every position from `position` on (for example to rewind after a rejected token).
    public func truncate(to position: Int) {
        count = min(count, max(0, position))
    }

    func keys(layer: Int) -> UnsafePointer<Float> { UnsafePointer(keys[layer]) }
    func values(layer: Int) -> UnsafePointer<Float> { UnsafePointer(values[layer]) }
}

@inline(__always)
func roundedToF16(_ x: Float) -> Float { f16ToF32(f32ToF16(x)) }
