// Requests waiting for a slot, one FIFO per queue key (the model name a client asked for), served
// round-robin across keys: a flood of requests on one adapter waits behind its own queue and cannot
// starve the other adapters (with tenants, the key is the tenant: one busy tenant cannot crowd out a
// quiet one). Limits: a total and a per-key count; a key at its running limit is passed over
// until one of its sequences ends. Guarded by the engine's lock.

struct FairQueue<Element> {
    private var queues: [String: [Element]] = [:]
    /// Keys with waiting elements, in round-robin order (the next to serve first).
    private var order: [String] = []
    private(set) var count = 0

    func count(forKey key: String) -> Int { queues[key]?.count ?? 0 }

    mutating func append(_ element: Element, key: String) {
        if queues[key, default: []].isEmpty { order.append(key) }
        queues[key, default: []].append(element)
        count += 1
    }

    /// The oldest element of the next key in turn; that key moves to the back of the order.
    mutating func popNext() -> Element? { popNext(skipping: { _, _ in false }) }

    /// The oldest element of the next key in turn whose oldest element `skip` does not hold back
    /// (a key at its running limit); that key moves to the back of the order, the skipped keep
    /// their places.
    mutating func popNext(skipping skip: (String, Element) -> Bool) -> Element? {
        guard let at = order.firstIndex(where: { !skip($0, queues[$0]![0]) }) else { return nil }
        let key = order.remove(at: at)
        var q = queues[key]!
        let e = q.removeFirst()
        count -= 1
        if q.isEmpty {
            queues[key] = nil
        } else {
            queues[key] = q
            order.append(key)
        }
        return e
    }

    /// Whether `popNext(skipping:)` would return an element.
    func hasNext(skipping skip: (String, Element) -> Bool) -> Bool {
        order.contains { !skip($0, queues[$0]![0]) }
    }

    /// Removes the elements matching `predicate` (cancelled requests), keeping the order.
    mutating func removeAll(where predicate: (Element) -> Bool) -> [Element] {
        var removed: [Element] = []
        for key in order {
            guard var q = queues[key] else { continue }
            let before = q.count
            removed += q.filter(predicate)
            q.removeAll(where: predicate)
            count -= before - q.count
            queues[key] = q.isEmpty ? nil : q
        }
        order.removeAll { queues[$0] == nil }
        return removed
    }
}
