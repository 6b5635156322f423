import Foundation
import Synchronization
import Testing
@testable import Media

/// The input-output queue's pieces: order, the bound (a full queue makes its producer wait, and
/// nothing is dropped), errors reaching the other side after the elements before them, and
/// cancellation that never leaves a thread waiting.
@Suite struct StageQueueTests {
    struct Boom: Error, Equatable { let at: Int }

    @Test func queueKeepsOrderAndDeliversTheErrorLast() throws {
        let queue = BoundedQueue<Int>(capacity: 3)
        let producer = StageThread(name: "test-producer") {
            for i in 0..<100 { try? queue.put(i) }
            queue.finish(throwing: Boom(at: 100))
        }
        var taken: [Int] = []
        #expect(throws: Boom(at: 100)) { while let i = try queue.take() { taken.append(i) } }
        producer.join()
        #expect(taken == Array(0..<100))
    }

    @Test func fullQueueMakesTheProducerWait() throws {
        let queue = BoundedQueue<Int>(capacity: 2)
        let putCount = Atomic(0)
        let producer = StageThread(name: "test-producer") {
            for i in 0..<5 {
                try? queue.put(i)
                putCount.add(1, ordering: .sequentiallyConsistent)
            }
            queue.finish()
        }
        // Polls up to 10 s (a loaded machine may start the thread late), never just sleeps and hopes.
        func waitFor(_ n: Int) -> Bool {
            let deadline = Date().addingTimeInterval(10)
            while putCount.load(ordering: .sequentiallyConsistent) < n && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
            return putCount.load(ordering: .sequentiallyConsistent) >= n
        }
        #expect(waitFor(2))
        Thread.sleep(forTimeInterval: 0.1)
        #expect(putCount.load(ordering: .sequentiallyConsistent) == 2)   // the third put waits
        #expect(try queue.take() == 0)
        #expect(waitFor(3))
        var rest: [Int] = []
        while let i = try queue.take() { rest.append(i) }
        producer.join()
        #expect(rest == [1, 2, 3, 4])
    }

    @Test func cancelWakesBothSides() throws {
        let full = BoundedQueue<Int>(capacity: 1)
        try full.put(1)
        let blockedPut = StageThread(name: "test-put") { #expect(throws: StageQueueError.cancelled) { try full.put(2) } }
        let empty = BoundedQueue<Int>(capacity: 1)
        let blockedTake = StageThread(name: "test-take") { #expect(throws: StageQueueError.cancelled) { _ = try empty.take() } }
        Thread.sleep(forTimeInterval: 0.1)
        full.cancel()
        empty.cancel()
        blockedPut.join()
        blockedTake.join()
    }

    /// The prefetching source gives what its producer makes, in order, whatever the depth (0 runs
    /// inline), stays at most `depth` + 1 elements ahead, and passes on the producer's error.
    @Test(arguments: [0, 1, 4])
    func sourceKeepsOrderAndBound(depth: Int) throws {
        let produced = Atomic(0)
        let source = PrefetchingSource<Int>(name: "test-source", depth: depth) {
            let i = produced.add(1, ordering: .sequentiallyConsistent).newValue - 1
            if i == 20 { throw Boom(at: i) }
            return i
        }
        var taken: [Int] = []
        for _ in 0..<3 { if let i = try source.next() { taken.append(i) } }
        Thread.sleep(forTimeInterval: 0.1)
        // Ahead of the consumer: `depth` queued plus the one waiting to be put.
        #expect(produced.load(ordering: .sequentiallyConsistent) <= 3 + depth + 1)
        #expect(throws: Boom(at: 20)) { while let i = try source.next() { taken.append(i) } }
        #expect(taken == Array(0..<20))
        source.close()
    }

    /// Closing a source whose producer waits on a full queue ends its thread (no hang, no leak).
    @Test func closingAFullSourceEndsItsThread() throws {
        let source = PrefetchingSource<Int>(name: "test-source", depth: 2) { 7 }   // never ends by itself
        #expect(try source.next() == 7)
        source.close()
        source.close()   // idempotent
    }

    @Test(arguments: [0, 1, 3])
    func sinkConsumesInOrderAndReportsItsError(depth: Int) throws {
        let seen = Mutex<[Int]>([])
        let sink = BackgroundSink<Int>(name: "test-sink", depth: depth) { i in
            if i == 50 { throw Boom(at: i) }
            seen.withLock { $0.append(i) }
        }
        for i in 0..<10 { try sink.send(i) }
        try sink.finish()
        #expect(seen.withLock { $0 } == Array(0..<10))

        let failing = BackgroundSink<Int>(name: "test-sink", depth: depth) { i in
            if i == 5 { throw Boom(at: i) }
        }
        // The failure reaches the sender on a later send, or at the latest from finish().
        let sendFailure = #expect(throws: Boom.self) {
            for i in 0..<1000 { try failing.send(i) }
            try failing.finish()
        }
        #expect(sendFailure == Boom(at: 5))
    }
}
