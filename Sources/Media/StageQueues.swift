import Foundation

/// Why a queue stopped early.
public enum StageQueueError: Error, Equatable, CustomStringConvertible {
    /// The other side gave up (it failed, or was cancelled); the stage stops without more work.
    case cancelled

    public var description: String { "the pipeline stage was cancelled" }
}

/// A first-in first-out queue of at most `capacity` elements between threads: `put` waits while it
/// is full (nothing is ever dropped), `take` waits while it is empty and returns nil once the
/// producer has finished and everything was taken. An error the producer finishes with reaches the
/// consumer after the elements before it; `cancel()` wakes both sides for good.
public final class BoundedQueue<Element>: @unchecked Sendable {
    public let capacity: Int
    private let condition = NSCondition()
    private var elements: [Element] = []
    private var head = 0
    private var finished = false, cancelled = false
    private var failure: (any Error)?

    public init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    private var count: Int { elements.count - head }

    public func put(_ element: Element) throws {
        condition.lock()
        defer { condition.unlock() }
        while count >= capacity && !cancelled && !finished { condition.wait() }
        guard !cancelled, !finished else { throw StageQueueError.cancelled }
        elements.append(element)
        condition.broadcast()
    }

    public func take() throws -> Element? {
        condition.lock()
        defer { condition.unlock() }
        while count == 0 && !finished && !cancelled { condition.wait() }
        if cancelled { throw StageQueueError.cancelled }
        guard count > 0 else {
            if let failure { throw failure }
            return nil
        }
        let element = elements[head]
        head += 1
        if head > 64 && head * 2 > elements.count {   // compact now and then: O(1) amortised
            elements.removeFirst(head)
            head = 0
        }
        condition.broadcast()
        return element
    }

    /// No more elements; `error` (if any) is thrown to the consumer after the queued elements.
    public func finish(throwing error: (any Error)? = nil) {
        condition.lock()
        (finished, failure) = (true, failure ?? error)
        condition.broadcast()
        condition.unlock()
    }

    /// Stops both sides: waiting and later calls throw `StageQueueError.cancelled`.
    public func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }
}

/// A value handed to exactly one stage thread (the stages' documented ownership rule, which the
/// compiler cannot check for closures over decoders and backends).
struct HandOff<Value>: @unchecked Sendable {
    let value: Value
}

/// The first error any side of a stage records.
final class ErrorSlot: @unchecked Sendable {
    private let lock = NSLock()
    private var error: (any Error)?

    func record(_ error: any Error) {
        lock.lock()
        if self.error == nil { self.error = error }
        lock.unlock()
    }

    var recorded: (any Error)? {
        lock.lock()
        defer { lock.unlock() }
        return error
    }
}

/// Runs a body on a thread of its own; `join()` waits for it to end.
final class StageThread: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)

    init(name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread { [done] in
            body()
            done.signal()
        }
        thread.name = name
        thread.start()
    }

    func join() { done.wait() }
}

/// The input side of a stage pipeline: `produce` (decode and pre-process) runs ahead on its own
/// thread, at most `depth` elements ahead of the consumer, in order. With depth 0 it runs inline
/// on the caller's thread (the serial path). `produce` returns nil at the end.
public final class PrefetchingSource<Element>: @unchecked Sendable {
    private let produce: () throws -> Element?
    private let queue: BoundedQueue<Element>?
    private var thread: StageThread?

    /// `produce` is only ever called from one thread at a time (the stage's own, or the caller's
    /// with depth 0), so it may own non-thread-safe state such as a decoder.
    public init(name: String, depth: Int, produce: @escaping () throws -> Element?) {
        self.produce = produce
        guard depth > 0 else { queue = nil; return }
        let queue = BoundedQueue<Element>(capacity: depth)
        self.queue = queue
        let producer = HandOff(value: produce)
        thread = StageThread(name: name) {
            do {
                while let element = try producer.value() { try queue.put(element) }
                queue.finish()
            } catch StageQueueError.cancelled {
            } catch {
                queue.finish(throwing: error)
            }
        }
    }

    /// The next element in order, nil at the end; rethrows the producer's error.
    public func next() throws -> Element? {
        guard let queue else { return try produce() }
        return try queue.take()
    }

    /// Stops the producer (if it is still running) and waits for its thread to end.
    public func close() {
        queue?.cancel()
        thread?.join()
        thread = nil
    }

    deinit { close() }
}

/// The output side: `consume` (post-process and encode) runs on its own thread for every element
/// sent, in order, with at most `depth` waiting. With depth 0 `send` consumes inline.
public final class BackgroundSink<Element>: @unchecked Sendable {
    private let consume: (Element) throws -> Void
    private let queue: BoundedQueue<Element>?
    private var thread: StageThread?
    private let failure = ErrorSlot()

    /// `consume` is only ever called from one thread (the stage's own, or the caller's with depth 0).
    public init(name: String, depth: Int, consume: @escaping (Element) throws -> Void) {
        self.consume = consume
        guard depth > 0 else { queue = nil; return }
        let queue = BoundedQueue<Element>(capacity: depth)
        self.queue = queue
        let (consumer, failure) = (HandOff(value: consume), failure)
        thread = StageThread(name: name) {
            do {
                while let element = try queue.take() { try consumer.value(element) }
            } catch StageQueueError.cancelled {
            } catch {
                failure.record(error)
                queue.cancel()   // the sender's next `send` stops
            }
        }
    }

    /// Hands one element to the consumer; throws the consumer's error once it has failed.
    public func send(_ element: Element) throws {
        guard let queue else { return try consume(element) }
        do { try queue.put(element) } catch {
            throw failure.recorded ?? error
        }
    }

    /// Waits until everything sent has been consumed; throws the consumer's error.
    public func finish() throws {
        queue?.finish()
        thread?.join()
        thread = nil
        if let error = failure.recorded { throw error }
    }

    /// Stops the consumer without waiting for what is queued, and waits for its thread to end.
    public func cancel() {
        queue?.cancel()
        thread?.join()
        thread = nil
    }

    deinit { cancel() }
}
