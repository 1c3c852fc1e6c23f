// Requests waiting for a slot, one FIFO per queue key (the model name a client asked for), served
// round-robin across keys: a flood of requests on one adapter waits behind its own queue and cannot
// starve the other adapters. Limits: a total and a per-key count. Guarded by the engine's lock.

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
    mutating func popNext() -> Element? {
        guard !order.isEmpty else { return nil }
        let key = order.removeFirst()
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
