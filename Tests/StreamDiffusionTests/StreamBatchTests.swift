import Foundation
import ModelFiles
import Models
import Testing
import Tensors
@testable import StreamDiffusion

/// The stream batch against an independent step-by-step computation with the same tiny SD 1.5
/// UNet (Tests/Fixtures/models/tiny-sd15): a frame that enters a stream of S steps and comes out
/// S − 1 calls later must equal the same S LCM steps done one at a time. Batched and single UNet
/// rows differ only in summation order: tolerance 1e-5 of the output scale.
@Suite struct StreamBatchTests {
    static let backend: CPUBackend = {
        do { return try CPUBackend(threads: 2, precision: .float32) } catch { fatalError("\(error)") }
    }()
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/models")

    static let unet: UNet2DConditionModel = {
        do {
            let folder = root.appendingPathComponent("tiny-sd15/unet")
            return try UNet2DConditionModel(
                WeightScope(source: SafeTensorsFile(url: folder.appendingPathComponent("diffusion_pytorch_model.safetensors")),
                            backend: backend),
                config: ConfigFile.load(UNetConfig.self, from: folder.appendingPathComponent("config.json")))
        } catch { fatalError("\(error)") }
    }()

    static let scheduler: LCMScheduler = {
        do { return try LCMScheduler(contentsOf: root.appendingPathComponent("tiny-sd15/scheduler/scheduler_config.json")) }
        catch { fatalError("\(error)") }
    }()

    var backend: CPUBackend { Self.backend }

    func random(_ shape: [Int], seed: UInt64) throws -> Tensor {
        var rng = SplitMix(seed: seed)
        return try backend.tensor((0..<Tensor.count(of: shape)).map { _ in rng.uniform() * 2 - 1 }, shape: shape)
    }

    func context(_ row: Int) throws -> Tensor {
        let reference = try SafeTensorsFile(url: Self.root.appendingPathComponent("activations/tiny-sd15-unet.safetensors"))
        return try reference.tensor("encoder_hidden_states", on: backend).slice(batch: row..<(row + 1))
    }

    /// One LCM step of one frame, written out directly.
    func step(_ x: Tensor, _ i: Int, _ schedule: StreamSchedule, context: Tensor) throws -> Tensor {
        let eps = try Self.unet(x, timesteps: [Float(schedule.timesteps[i])], context: context)
        let x0 = try backend.scale(backend.sub(x, backend.scale(eps, by: schedule.beta[i], adding: 0)),
                                   by: 1 / schedule.alpha[i], adding: 0)
        return try backend.add(backend.scale(x0, by: schedule.cOut[i], adding: 0), backend.scale(x, by: schedule.cSkip[i], adding: 0))
    }

    @Test(arguments: [false, true])
    func streamEqualsStepByStep(addNoise: Bool) throws {
        let schedule = try StreamSchedule(scheduler: Self.scheduler, timesteps: [999, 659, 259])
        let noise = try random([3, 8, 8, 4], seed: 1)
        let positive = try context(0)
        let stream = try StreamBatch(predictor: Self.unet, schedule: schedule, cfg: .none, addNoise: addNoise,
                                     initNoise: noise, backend: backend)
        try stream.setPrompt(positive: positive, negative: nil)
        let frames = try (0..<4).map { try random([1, 8, 8, 4], seed: 10 + UInt64($0)) }
        var outputs: [Tensor] = []
        for frame in frames { outputs.append(try stream(stream.noised(frame))) }
        // Frame k comes out of call k + 2 after steps 0, 1, 2 with the slot noise re-added between.
        for k in 0..<2 {
            var x = try backend.add(backend.scale(frames[k], by: schedule.alpha[0], adding: 0),
                                    backend.scale(noise.slice(batch: 0..<1), by: schedule.beta[0], adding: 0))
            for i in 0..<3 {
                let denoised = try step(x, i, schedule, context: positive)
                if i == 2 { x = denoised; break }
                x = try backend.scale(denoised, by: schedule.alpha[i + 1], adding: 0)
                if addNoise {
                    x = try backend.add(x, backend.scale(noise.slice(batch: (i + 1)..<(i + 2)), by: schedule.beta[i + 1], adding: 0))
                }
            }
            expectClose(try backend.floats(outputs[k + 2]), try backend.floats(x), relative: 1e-5, "frame \(k), noise \(addNoise)")
        }
    }

    /// frame_buffer_size 2 is two interleaved single-frame streams, each with its own slot noise
    /// (rows are step-major: [step 0: a, b; step 1: a, b]) — the case the official code mis-slices.
    @Test(arguments: [CFGType.none, .self, .full, .initialize])
    func frameBufferIsInterleavedStreams(cfg: CFGType) throws {
        let schedule = try StreamSchedule(scheduler: Self.scheduler, timesteps: [799, 399])
        let (positive, negative) = (try context(0), try context(1))
        let noiseA = try random([2, 8, 8, 4], seed: 2), noiseB = try random([2, 8, 8, 4], seed: 3)
        let interleaved = try backend.concatRows([noiseA.slice(batch: 0..<1), noiseB.slice(batch: 0..<1),
                                                  noiseA.slice(batch: 1..<2), noiseB.slice(batch: 1..<2)])
        func make(_ noise: Tensor, frames: Int) throws -> StreamBatch {
            let s = try StreamBatch(predictor: Self.unet, schedule: schedule, frames: frames, cfg: cfg, guidanceScale: 1.5,
                                    delta: 0.7, initNoise: noise, backend: backend)
            try s.setPrompt(positive: positive, negative: negative)
            return s
        }
        let pair = try make(interleaved, frames: 2), streamA = try make(noiseA, frames: 1), streamB = try make(noiseB, frames: 1)
        for call in 0..<4 {
            let a = try random([1, 8, 8, 4], seed: 100 + UInt64(call)), b = try random([1, 8, 8, 4], seed: 200 + UInt64(call))
            let both = try pair(pair.noised(backend.concatRows([a, b])))
            let expected = try backend.concatRows([streamA(streamA.noised(a)), streamB(streamB.noised(b))])
            expectClose(try backend.floats(both), try backend.floats(expected), relative: 1e-5, "\(cfg) call \(call)")
        }
    }

    /// Two streams with their own prompt, noise, guidance and cfg in one UNet call give what each
    /// gives alone (the live server serves its clients this way). 1e-5: same UNet, other batch size.
    @Test(arguments: [CFGType.none, .self, .full, .initialize])
    func streamsShareOneUNetCall(cfg: CFGType) throws {
        let schedule = try StreamSchedule(scheduler: Self.scheduler, timesteps: [799, 399])
        func make(seed: UInt64, cfg: CFGType, prompt: Int) throws -> StreamBatch {
            let s = try StreamBatch(predictor: Self.unet, schedule: schedule, cfg: cfg, guidanceScale: 1.5, delta: 0.7,
                                    initNoise: random([2, 8, 8, 4], seed: seed), backend: backend)
            try s.setPrompt(positive: context(prompt), negative: context(1 - prompt))
            return s
        }
        // Each pair: A with `cfg` and B with `.full` (different row counts), shared and alone.
        let sharedA = try make(seed: 2, cfg: cfg, prompt: 0), sharedB = try make(seed: 3, cfg: .full, prompt: 1)
        let aloneA = try make(seed: 2, cfg: cfg, prompt: 0), aloneB = try make(seed: 3, cfg: .full, prompt: 1)
        for call in 0..<4 {
            let a = try random([1, 8, 8, 4], seed: 100 + UInt64(call)), b = try random([1, 8, 8, 4], seed: 200 + UInt64(call))
            let shared = try StreamBatch.together([(sharedA, sharedA.noised(a)), (sharedB, sharedB.noised(b))])
            expectClose(try backend.floats(shared[0]), try backend.floats(aloneA(aloneA.noised(a))), relative: 1e-5, "\(cfg) A call \(call)")
            expectClose(try backend.floats(shared[1]), try backend.floats(aloneB(aloneB.noised(b))), relative: 1e-5, "\(cfg) B call \(call)")
        }
    }

    @Test func rejectsBadSetups() throws {
        let schedule = try StreamSchedule(scheduler: Self.scheduler, tIndexList: [0])
        #expect(schedule.timesteps == [999])
        #expect(try StreamSchedule(scheduler: Self.scheduler, tIndexList: [32, 45]).timesteps == [359, 99])
        #expect(throws: StreamError.self) {
            try StreamBatch(predictor: Self.unet, schedule: schedule, frames: 2, initNoise: random([1, 8, 8, 4], seed: 1), backend: backend)
        }
        let stream = try StreamBatch(predictor: Self.unet, schedule: schedule, cfg: .full, guidanceScale: 2,
                                     initNoise: random([1, 8, 8, 4], seed: 1), backend: backend)
        #expect(throws: StreamError.notPrepared) { try stream(random([1, 8, 8, 4], seed: 2)) }
        #expect(throws: StreamError.self) { try stream.setPrompt(positive: context(0), negative: nil) }
        #expect(throws: StreamError.self) { try StreamSchedule(scheduler: Self.scheduler, timesteps: [1000]) }
        #expect(throws: StreamError.invalidParameter("t_index_list entry 50 is outside 0...49 (the 50-step schedule)")) {
            try StreamSchedule(scheduler: Self.scheduler, tIndexList: [0, 50])
        }
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func uniform() -> Float {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Float((z ^ (z >> 31)) >> 40) / Float(1 << 24)
    }
}

func expectClose(_ actual: [Float], _ expected: [Float], relative: Float, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    guard actual.count == expected.count else {
        Issue.record("\(what): \(actual.count) values, expected \(expected.count)", sourceLocation: sourceLocation)
        return
    }
    var worst: Float = 0, scale: Float = 0
    for i in actual.indices {
        let d = abs(actual[i] - expected[i])
        worst = d.isNaN ? .infinity : max(worst, d)
        scale = max(scale, abs(expected[i]))
    }
    #expect(worst <= relative * max(scale, 1e-3), "\(what): max |diff| \(worst), scale \(scale)", sourceLocation: sourceLocation)
}
