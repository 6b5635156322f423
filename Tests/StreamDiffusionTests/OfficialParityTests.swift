import Foundation
import ModelFiles
import Models
import Testing
import Tensors
@testable import StreamDiffusion

/// Parity with the official `streamdiffusion` package (0.1.1, on diffusers 0.39 / torch 2.13 CPU),
/// from the fixtures that `tools/make_pipeline_fixtures.py` records in Tests/Fixtures/pipeline/:
/// the same tiny SD 1.5 UNet and text encoder, the tiny TAESD, a byte-level tokenizer folder, the
/// same seeds and inputs. `cases.json` says what every case is.
///
/// Tolerance: fp32, max |Swift − official| ≤ 1e-4 × max |official| on every latent (x_t entering
/// the stream, x0 leaving it) and every decoded image. Noise drawn from torch's generator must be
/// bit-exact (TorchRandomSource reproduces torch.randn).
///
/// How each case runs through the Swift API:
/// - img2img: `StreamPipeline.img2img` (the facade) gives the decoded outputs; a second pipeline
///   prepared the same way runs the facade's own steps (`encode` → `StreamBatch.noised` →
///   `StreamBatch` → `finish`) to expose the latents, and must give the facade's outputs bit for bit.
/// - txt2img: the official code draws its noise *unseeded* from torch's global generator, seeded
///   by the fixture script with `torch.manual_seed(G)` before each call; that is the stream of
///   `TorchRandomSource(seed: G)`, so the test sets the pipeline's generator to it before each
///   `txt2img()` (the facade's own draw then is the official noise, checked against the fixture).
/// - similarity filter: the official draws (Python `random.uniform`) are replayed through
///   `SimilarImageFilter(threshold:maxSkipFrames:draws:)` installed in the facade after `prepare`.
/// - use_denoising_batch = false: the first call is matched step by step with the official
///   `randn_like` draws replayed (see `sequentialMode` for why later calls differ on purpose).
@Suite(.serialized) struct OfficialParityTests {
    static let backend = StreamBatchTests.backend
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/pipeline")
    static let tolerance: Float = 1e-4

    struct Manifest: Decodable {
        struct Tokens: Decodable { let text: String; let ids: [Int] }
        struct Schedule: Decodable {
            let timesteps: [Int]
            let alpha: [Float], beta: [Float]
            let c_skip: [Float], c_out: [Float]
        }
        struct Case: Decodable {
            let name: String
            let kind: String
            let t_index_list: [Int]
            let cfg_type: String
            let do_add_noise: Bool
            let use_denoising_batch: Bool
            let guidance_scale: Float
            let delta: Float
            let seed: UInt64
            let negative_prompt: String?
            let schedule: Schedule
            let init_noise: String
            let x_t: String?
            let x0: String
            let decoded: String
            let decoded_calls: [Int]
            let inputs: String?
            let input_calls: [Int]?
            let global_seeds: [UInt64]?
            let noise: String?
            // similarity
            let threshold: Double?
            let max_skip_frame: Int?
            let sources: [[Source]]?
            let extra_frames: String?
            let draws: [Double]?
            let cosines: [Double]?
            let skipped: [Bool]?
            let processed_calls: [Int]?
            // sequential
            let step_noise: String?
        }
        enum Source: Decodable {
            case name(String), index(Int)
            init(from decoder: Decoder) throws {
                let c = try decoder.singleValueContainer()
                if let i = try? c.decode(Int.self) { self = .index(i) } else { self = .name(try c.decode(String.self)) }
            }
        }
        let prompt: String
        let negative_prompt: String
        let tokens: [Tokens]
        let cases: [Case]
    }

    static let manifest: Manifest = StreamPipelineTests.load {
        try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: folder.appendingPathComponent("cases.json")))
    }
    static let file: SafeTensorsFile = StreamPipelineTests.load {
        try SafeTensorsFile(url: folder.appendingPathComponent("pipeline.safetensors"))
    }
    /// The byte-level tokenizer. The fixture folder (Fixtures/pipeline/tokenizer, the one the
    /// Python side loads) holds the same vocabulary, but `CLIPTokenizer(folder:)` currently rejects
    /// its header-only merges.txt ("no merges") while transformers accepts it; `tokenizerFolder`
    /// reports that. The cases use the in-memory tokenizer with the same vocabulary, whose ids
    /// `tokenizerMatchesTransformers` checks against transformers'.
    static var tokenizer: CLIPTokenizer { StreamPipelineTests.tokenizer }

    static func `case`(_ name: String) -> Manifest.Case {
        guard let c = manifest.cases.first(where: { $0.name == name }) else { fatalError("no case \(name) in cases.json") }
        return c
    }

    var backend: CPUBackend { Self.backend }

    func tensor(_ key: String) throws -> Tensor { try Self.file.tensor(key, on: backend) }
    func floats(_ key: String) throws -> [Float] { try backend.floats(tensor(key)) }
    /// Row `k` of a stored [N, …] tensor.
    func row(_ key: String, _ k: Int) throws -> Tensor { try tensor(key).slice(batch: k..<(k + 1)) }

    func close(_ actual: Tensor, _ expected: Tensor, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(actual.shape == expected.shape, "\(what): shape \(actual.shape), expected \(expected.shape)", sourceLocation: sourceLocation)
        expectClose(try backend.floats(actual), try backend.floats(expected), relative: Self.tolerance, what,
                    sourceLocation: sourceLocation)
    }

    /// torch.randn(rows, 4, 8, 8) from `TorchRandomSource(seed:)`, laid out NHWC.
    static func torchNoise(_ random: inout TorchRandomSource, rows: Int, h: Int = 8, w: Int = 8) -> [Float] {
        let nchw = random.normal(count: rows * 4 * h * w)
        var nhwc = [Float](repeating: 0, count: nchw.count)
        for n in 0..<rows { for c in 0..<4 { for y in 0..<h { for x in 0..<w {
            nhwc[((n * h + y) * w + x) * 4 + c] = nchw[((n * 4 + c) * h + y) * w + x]
        } } } }
        return nhwc
    }

    func pipeline(_ c: Manifest.Case) throws -> StreamPipeline {
        var p = StreamParameters()
        p.width = 64
        p.height = 64
        p.tIndexList = c.t_index_list
        p.cfgType = try #require(CFGType(rawValue: c.cfg_type))
        p.guidanceScale = c.guidance_scale
        p.delta = c.delta
        p.doAddNoise = c.do_add_noise
        p.useDenoisingBatch = c.use_denoising_batch
        p.seed = c.seed
        p.numInferenceSteps = 50
        if let threshold = c.threshold, let skip = c.max_skip_frame {
            p.enableSimilarImageFilter = true
            p.similarImageFilterThreshold = threshold
            p.similarImageFilterMaxSkipFrame = skip
        }
        let stream = try StreamPipeline(tokenizer: Self.tokenizer, textEncoder: StreamPipelineTests.textEncoder,
                                        unet: StreamBatchTests.unet, vae: .tiny(StreamPipelineTests.taesd),
                                        scheduler: StreamBatchTests.scheduler, parameters: p, backend: Self.backend)
        try stream.prepare(prompt: Self.manifest.prompt, negativePrompt: c.negative_prompt ?? Self.manifest.negative_prompt)
        return stream
    }

    /// The prepared state: schedule constants and the seeded init noise (bit-exact).
    func checkPrepared(_ stream: StreamPipeline, _ c: Manifest.Case) throws {
        let s = stream.schedule
        #expect(s.timesteps == c.schedule.timesteps, "\(c.name): timesteps")
        for (mine, theirs, what) in [(s.alpha, c.schedule.alpha, "alpha"), (s.beta, c.schedule.beta, "beta"),
                                     (s.cSkip, c.schedule.c_skip, "c_skip"), (s.cOut, c.schedule.c_out, "c_out")] {
            expectClose(mine, theirs, relative: 1e-6, "\(c.name): \(what)")
        }
        let batch = try #require(stream.stream)
        #expect(try backend.floats(batch.initNoise) == floats(c.init_noise), "\(c.name): init_noise is not torch's seeded draw")
    }

    // MARK: Tokenizer and text

    @Test func tokenizerMatchesTransformers() throws {
        for entry in Self.manifest.tokens {
            #expect(Self.tokenizer.encode(entry.text) == entry.ids, "byte-level tokenizer on \(entry.text.debugDescription)")
        }
    }

    /// The fixture's tokenizer folder (vocab.json, header-only merges.txt, special_tokens_map.json,
    /// tokenizer_config.json) must load and give transformers' ids.
    @Test func tokenizerFolder() throws {
        let folder = try CLIPTokenizer(folder: Self.folder.appendingPathComponent("tokenizer"))
        for entry in Self.manifest.tokens {
            #expect(folder.encode(entry.text) == entry.ids, "CLIPTokenizer(folder:) on \(entry.text.debugDescription)")
        }
    }

    @Test func promptEmbeddingsMatchEncodePrompt() throws {
        for (text, key) in [(Self.manifest.prompt, "embeddings/prompt"), (Self.manifest.negative_prompt, "embeddings/negative")] {
            let mine = try StreamPipelineTests.textEncoder([Self.tokenizer.encode(text)])
            try close(mine, tensor(key), "embedding of \(text.debugDescription)")
        }
    }

    // MARK: img2img

    static let img2imgCases = manifest.cases.filter { $0.kind == "img2img" }.map(\.name)

    @Test(arguments: img2imgCases)
    func img2img(_ name: String) throws {
        let c = Self.case(name)
        let inputs = try #require(c.inputs), calls = try #require(c.input_calls), xT = try #require(c.x_t)
        let facade = try pipeline(c), steps = try pipeline(c)
        try checkPrepared(facade, c)
        let batch = try #require(steps.stream)
        for (k, input) in calls.enumerated() {
            let image = try row(inputs, input)
            let output = try facade.img2img(image)
            let noised = try batch.noised(steps.encode(image))
            try close(noised, row(xT, k), "\(name) call \(k): x_t (encoded + noised input)")
            let x0 = try batch(noised)
            try close(x0, row(c.x0, k), "\(name) call \(k): x0 (x_0_pred_out)")
            let decoded = try steps.finish(x0)
            #expect(try backend.floats(decoded) == backend.floats(output), "\(name) call \(k): facade ≠ its own steps")
            if let slot = c.decoded_calls.firstIndex(of: k) {
                try close(output, row(c.decoded, slot), "\(name) call \(k): decoded output")
            }
        }
    }

    // MARK: txt2img

    static let txt2imgCases = manifest.cases.filter { $0.kind.hasPrefix("txt2img") }.map(\.name)

    @Test(arguments: txt2imgCases)
    func txt2img(_ name: String) throws {
        let c = Self.case(name)
        let seeds = try #require(c.global_seeds), noiseKey = try #require(c.noise)
        let facade = try pipeline(c), steps = try pipeline(c)
        try checkPrepared(facade, c)
        let batch = try #require(steps.stream)
        for (k, seed) in seeds.enumerated() {
            var random = TorchRandomSource(seed: seed)
            let noise = Self.torchNoise(&random, rows: 1)
            #expect(try noise == backend.floats(row(noiseKey, k)), "\(name) call \(k): torch.manual_seed(\(seed)) noise")
            facade.random = TorchRandomSource(seed: seed)     // the official global generator
            let output = try facade.txt2img()
            // Latents: the one-step sd-turbo formula with the UNet, or the stream batch.
            let x = try backend.tensor(noise, shape: [1, 8, 8, 4])
            let x0: Tensor
            if c.kind == "txt2img_sd_turbo" {
                let context = try #require(batch.context)
                let eps = try StreamBatchTests.unet(x, timesteps: [Float(steps.schedule.timesteps[0])], context: context)
                x0 = try backend.scale(backend.sub(x, backend.scale(eps, by: steps.schedule.beta[0], adding: 0)),
                                       by: 1 / steps.schedule.alpha[0], adding: 0)
            } else {
                x0 = try batch(x)
            }
            try close(x0, row(c.x0, k), "\(name) call \(k): x0")
            #expect(try backend.floats(steps.finish(x0)) == backend.floats(output), "\(name) call \(k): facade ≠ its own steps")
            if let slot = c.decoded_calls.firstIndex(of: k) {
                try close(output, row(c.decoded, slot), "\(name) call \(k): decoded output")
            }
        }
    }

    // MARK: Similarity filter

    final class Replay: @unchecked Sendable {
        var draws: [Double]
        var used = 0
        init(_ draws: [Double]) { self.draws = draws }
        func next() -> Float {
            defer { used += 1 }
            guard used < draws.count else { Issue.record("more filter draws than the official run made"); return 0 }
            return Float(draws[used])
        }
    }

    @Test func similarityFilterReplaysTheOfficialDecisions() throws {
        let c = Self.case("similarity/t32-45/self")
        let sources = try #require(c.sources), draws = try #require(c.draws), skipped = try #require(c.skipped)
        let processed = try #require(c.processed_calls), cosines = try #require(c.cosines)
        let extra = try #require(c.extra_frames), xT = try #require(c.x_t)
        let frames = try sources.map { source -> Tensor in
            guard source.count == 2, case let .name(which) = source[0], case let .index(k) = source[1] else {
                throw StreamError.badInput("bad source \(source)")
            }
            return try row(which == "frames" ? "inputs/frames" : extra, k)
        }
        let facade = try pipeline(c), steps = try pipeline(c)
        try checkPrepared(facade, c)
        let replay = Replay(draws)
        facade.filter = SimilarImageFilter(threshold: try #require(c.threshold), maxSkipFrames: try #require(c.max_skip_frame),
                                           draws: replay.next)
        // The official cosine similarity of each call (after the first) to the last processed input.
        var last = try backend.floats(frames[0])
        for k in 1..<frames.count {
            let input = try backend.floats(frames[k])
            let cos = SimilarImageFilter.cosine(last, input)
            #expect(abs(cos - cosines[k - 1]) <= 1e-6, "call \(k): cosine \(cos), official \(cosines[k - 1])")
            if !skipped[k] { last = input }
        }
        let batch = try #require(steps.stream)
        var previous: [Float]?
        var processedSoFar = 0
        for (k, frame) in frames.enumerated() {
            let before = facade.skippedFrames
            let output = try backend.floats(facade.img2img(frame))
            let skip = facade.skippedFrames > before
            #expect(skip == skipped[k], "call \(k): Swift \(skip ? "skipped" : "processed"), official \(skipped[k] ? "skipped" : "processed")")
            if skip {
                #expect(output == previous, "call \(k): a skipped frame must repeat the previous output")
            } else if processedSoFar < processed.count, processed[processedSoFar] == k {
                let noised = try batch.noised(steps.encode(frame))
                try close(noised, row(xT, processedSoFar), "similarity call \(k): x_t")
                let x0 = try batch(noised)
                try close(x0, row(c.x0, processedSoFar), "similarity call \(k): x0")
                #expect(try backend.floats(steps.finish(x0)) == output, "similarity call \(k): facade ≠ its own steps")
                if let slot = c.decoded_calls.firstIndex(of: k) {
                    expectClose(output, try floats(c.decoded).chunked(slot, of: c.decoded_calls.count),
                                relative: Self.tolerance, "similarity call \(k): decoded output")
                }
                processedSoFar += 1
            }
            previous = output
        }
        #expect(replay.used == draws.count, "the filter drew \(replay.used) numbers, the official one \(draws.count)")
    }

    // MARK: Sequential denoising (use_denoising_batch = false)

    /// Sequential mode against the official first call (every step's UNet input and x0, and the
    /// output), replaying the official `randn_like` draws (torch's global generator after
    /// `manual_seed(global_seeds[k])`). Later calls differ on purpose: the official code overwrites its
    /// slot noise with each call's x_t, so call k + 1 is noised with call k's x_t; ours keeps the
    /// seeded noise. The recorded draws are still checked for every call.
    @Test func sequentialMode() throws {
        let c = Self.case("sequential/t20-35-45/self")
        let seeds = try #require(c.global_seeds), key = try #require(c.step_noise)
        let inputs = try #require(c.inputs), calls = try #require(c.input_calls), xT = try #require(c.x_t)
        let perCall = c.t_index_list.count - 1
        for (k, seed) in seeds.enumerated() {
            var random = TorchRandomSource(seed: seed)
            for i in 0..<perCall {
                #expect(try Self.torchNoise(&random, rows: 1) == backend.floats(row(key, k * perCall + i)),
                        "call \(k), step \(i + 1): randn_like after torch.manual_seed(\(seed))")
            }
        }
        let stream = try pipeline(c)
        try checkPrepared(stream, c)
        let batch = try #require(stream.stream)
        let image = try row(inputs, calls[0])
        let noised = try batch.noised(stream.encode(image))
        try close(noised, row(xT, 0), "sequential call 0: x_t")
        stream.random = TorchRandomSource(seed: seeds[0])
        let x0 = try batch(noised, freshNoise: stream.freshNoise)
        try close(x0, row(c.x0, 0), "sequential call 0: x0 after \(c.t_index_list.count) single-step UNet calls")
    }
}

private extension Array where Element == Float {
    /// Part `k` of `count` equal parts.
    func chunked(_ k: Int, of count: Int) -> [Float] {
        let n = self.count / count
        return Array(self[(k * n)..<((k + 1) * n)])
    }
}
