@testable import Models
import Synchronization
import Testing
import Tensors
@testable import StreamDiffusion

/// The pre-computation cache (paper §3): the prompt's cross-attention keys and values are projected
/// once per prompt and reused every frame. Checked against the UNet projecting them from the
/// embeddings on every call, with the tiny SD 1.5 UNet of StreamBatchTests.
@Suite struct CrossAttentionCacheTests {
    let tests = StreamBatchTests()
    var backend: CPUBackend { StreamBatchTests.backend }
    var unet: UNet2DConditionModel { StreamBatchTests.unet }

    /// Keys and values projected from one-row prompts and stacked per row give the UNet what
    /// projecting the stacked embeddings in the call gives. 1e-5 of the output scale: the same
    /// products with another row count (only the summation order may differ).
    @Test func stackedCacheMatchesProjectionInTheCall() throws {
        let (a, b) = (try tests.context(0), try tests.context(1))
        let sample = try tests.random([3, 8, 8, 4], seed: 7)
        let timesteps: [Float] = [999, 500, 20]
        let perCall = try unet(sample, timesteps: timesteps, context: backend.concatRows([a, b, a]))
        let (cachedA, cachedB) = (try unet.crossAttention(a), try unet.crossAttention(b))
        let cached = try unet(sample, timesteps: timesteps,
                              context: CrossAttentionContext.stacked([cachedA, cachedB, cachedA], on: backend))
        expectClose(try backend.floats(cached), try backend.floats(perCall), relative: 1e-5, "stacked cache")
        // A slice of a stacked context is that row's context.
        let second = try unet(sample.slice(batch: 1..<2), timesteps: [500],
                              context: CrossAttentionContext.stacked([cachedA, cachedB, cachedA], on: backend).slice(rows: 1..<2))
        expectClose(try backend.floats(second), try backend.floats(perCall.slice(batch: 1..<2)), relative: 1e-5, "sliced cache")
    }

    /// A stream projects keys and values when its prompt is set (once per distinct prompt: positive,
    /// plus negative for full/initialize guidance), never per frame; a new prompt projects again.
    @Test(arguments: [CFGType.none, .self, .full, .initialize])
    func projectsOncePerPrompt(cfg: CFGType) throws {
        let projectionsPerPrompt = cfg == .full || cfg == .initialize ? 2 : 1
        let counting = CountingPredictor(unet: unet)
        let schedule = try StreamSchedule(scheduler: StreamBatchTests.scheduler, timesteps: [799, 399, 99])
        let stream = try StreamBatch(predictor: counting, schedule: schedule, cfg: cfg, guidanceScale: 1.5,
                                     initNoise: tests.random([3, 8, 8, 4], seed: 3), backend: backend)
        try stream.setPrompt(positive: tests.context(0), negative: tests.context(1))
        for frame in 0..<5 { _ = try stream(stream.noised(tests.random([1, 8, 8, 4], seed: 40 + UInt64(frame)))) }
        #expect(counting.counts == .init(projections: projectionsPerPrompt, calls: 5))
        try stream.setPrompt(positive: tests.context(1), negative: tests.context(0))
        _ = try stream(stream.noised(tests.random([1, 8, 8, 4], seed: 50)))
        #expect(counting.counts == .init(projections: 2 * projectionsPerPrompt, calls: 6))
    }

    @Test func rejectsMismatchedContexts() throws {
        let context = try unet.crossAttention(tests.context(0))
        let sample = try tests.random([1, 8, 8, 4], seed: 1)
        let truncated = CrossAttentionContext(embeddings: context.embeddings, layers: Array(context.layers.dropLast()))
        #expect(throws: ModelError.self) { try unet(sample, timesteps: [1], context: truncated) }
        #expect(throws: ModelError.self) { try unet(sample, timesteps: [1, 2], context: context) }
        #expect(throws: ModelError.self) { try unet.crossAttention(backend.tensor([1, 2], shape: [1, 2])) }
        #expect(throws: TensorError.self) { try CrossAttentionContext.stacked([], on: backend) }
        #expect(throws: TensorError.self) { try CrossAttentionContext.stacked([context, truncated], on: backend) }
    }
}

/// The UNet, counting key/value projections and noise predictions.
final class CountingPredictor: NoisePredictor {
    struct Counts: Equatable { var projections = 0, calls = 0 }
    let unet: UNet2DConditionModel
    private let state = Mutex(Counts())
    var counts: Counts { state.withLock { $0 } }

    init(unet: UNet2DConditionModel) { self.unet = unet }

    func crossAttention(_ embeddings: Tensor) throws -> CrossAttentionContext {
        state.withLock { $0.projections += 1 }
        return try unet.crossAttention(embeddings)
    }

    func callAsFunction(_ latents: Tensor, timesteps: [Float], context: CrossAttentionContext) throws -> Tensor {
        state.withLock { $0.calls += 1 }
        return try unet(latents, timesteps: timesteps, context: context)
    }
}
