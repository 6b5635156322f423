import Foundation
import ModelFiles
import Models
import Testing
import Tensors
@testable import StreamDiffusion

/// The image-level pipeline on the tiny SD 1.5 fixture (UNet, text encoder) with the tiny TAESD.
/// Its text encoder knows 1000 tokens, so the tokenizer here is CLIP's byte-level alphabet with
/// BOS/EOS at 998/999 (the fixture's own ids). These tests check the wiring against direct
/// computations; parity with the official package is the fixture suite's job.
@Suite(.serialized) struct StreamPipelineTests {
    static let backend = StreamBatchTests.backend
    static let root = StreamBatchTests.root

    static let tokenizer: CLIPTokenizer = {
        // CLIP's bytes_to_unicode: printable bytes map to themselves, the other 68 to U+0100… in
        // byte order; ids 0–255 are the symbols, 256–511 the same with </w> (no merges).
        let printable = Set(Array(33...126) + Array(161...172) + Array(174...255))
        var symbols: [String] = [], shifted = 256
        for byte in 0..<256 {
            let code = printable.contains(byte) ? byte : { defer { shifted += 1 }; return shifted }()
            symbols.append(String(Character(Unicode.Scalar(UInt32(code))!)))
        }
        let order = (0..<256).filter { printable.contains($0) } + (0..<256).filter { !printable.contains($0) }
        var vocabulary: [String: Int] = ["<|startoftext|>": 998, "<|endoftext|>": 999]
        for (id, byte) in order.enumerated() {
            vocabulary[symbols[byte]] = id
            vocabulary[symbols[byte] + "</w>"] = 256 + id
        }
        return load { try CLIPTokenizer(vocabulary: vocabulary, merges: [], padTokenID: 999) }
    }()

    static func load<T>(_ body: () throws -> T) -> T { do { return try body() } catch { fatalError("\(error)") } }

    static let textEncoder: CLIPTextModel = load {
        let folder = root.appendingPathComponent("tiny-sd15/text_encoder")
        return try CLIPTextModel(WeightScope(source: SafeTensorsFile(url: folder.appendingPathComponent("model.safetensors")), backend: backend),
                                 config: ConfigFile.load(CLIPTextConfig.self, from: folder.appendingPathComponent("config.json")))
    }
    static let taesd: AutoencoderTiny = load {
        let folder = root.appendingPathComponent("tiny-taesd")
        return try AutoencoderTiny(WeightScope(source: SafeTensorsFile(url: folder.appendingPathComponent("diffusion_pytorch_model.safetensors")),
                                               backend: backend),
                                   config: ConfigFile.load(AutoencoderTinyConfig.self, from: folder.appendingPathComponent("config.json")))
    }

    func pipeline(_ configure: (inout StreamParameters) -> Void) throws -> StreamPipeline {
        var p = StreamParameters()
        p.width = 64
        p.height = 64
        configure(&p)
        return try StreamPipeline(tokenizer: Self.tokenizer, textEncoder: Self.textEncoder, unet: StreamBatchTests.unet,
                                  vae: .tiny(Self.taesd), scheduler: StreamBatchTests.scheduler, parameters: p, backend: Self.backend)
    }

    func image(_ seed: UInt64) throws -> Tensor {
        var rng = SplitMix(seed: seed)
        return try Self.backend.tensor((0..<(64 * 64 * 3)).map { _ in rng.uniform() * 2 - 1 }, shape: [1, 64, 64, 3])
    }

    /// One step, txt2img: x0 = (x − β·ε)/α from noise drawn by torch's generator (NCHW order).
    @Test func oneStepTxt2imgIsTheTurboPath() throws {
        let stream = try pipeline { $0.tIndexList = [0]; $0.cfgType = .none; $0.seed = 5 }
        try stream.prepare(prompt: "a red circle")
        let out = try stream.txt2img()
        let backend = Self.backend
        var random = TorchRandomSource(seed: 5)
        _ = random.normal(count: 4 * 8 * 8)                       // prepare's init_noise (1 row)
        let nchw = random.normal(count: 4 * 8 * 8)
        var nhwc = [Float](repeating: 0, count: nchw.count)
        for c in 0..<4 { for p in 0..<64 { nhwc[p * 4 + c] = nchw[c * 64 + p] } }
        let noise = try backend.tensor(nhwc, shape: [1, 8, 8, 4])
        let context = try Self.textEncoder([Self.tokenizer.encode("a red circle")])
        let eps = try StreamBatchTests.unet(noise, timesteps: [999], context: context)
        let schedule = stream.schedule
        let x0 = try backend.scale(backend.sub(noise, backend.scale(eps, by: schedule.beta[0], adding: 0)), by: 1 / schedule.alpha[0], adding: 0)
        expectClose(try backend.floats(out), try backend.floats(Self.taesd.decode(x0)), relative: 1e-5, "turbo txt2img")
    }

    @Test func seedsAndPromptsMatter() throws {
        func run(seed: UInt64, prompt: String, update: String? = nil) throws -> [Float] {
            let stream = try pipeline { $0.tIndexList = [20, 40]; $0.seed = seed; $0.guidanceScale = 1.4 }
            try stream.prepare(prompt: prompt)
            if let update { try stream.updatePrompt(update) }
            var last: Tensor?
            for k in 0..<3 { last = try stream.img2img(image(UInt64(k))) }
            return try Self.backend.floats(try #require(last))
        }
        let base = try run(seed: 1, prompt: "abc")
        #expect(try run(seed: 1, prompt: "abc") == base)                        // deterministic
        #expect(try run(seed: 2, prompt: "abc") != base)                        // the seed is honoured
        #expect(try run(seed: 1, prompt: "xyz") != base)
        #expect(try run(seed: 1, prompt: "xyz", update: "abc") == base)         // a prompt swap = preparing with it
    }

    /// A live prompt change under full and initialize keeps the negative rows (the official
    /// `update_prompt` drops them and breaks both modes): it must equal preparing with the new prompt.
    @Test(arguments: [CFGType.full, .initialize])
    func promptUpdatesKeepNegativeRows(cfg: CFGType) throws {
        func run(_ prompt: String, update: String?) throws -> [Float] {
            let stream = try pipeline { $0.tIndexList = [20, 40]; $0.cfgType = cfg; $0.guidanceScale = 1.6 }
            try stream.prepare(prompt: prompt, negativePrompt: "zz")
            if let update { try stream.updatePrompt(update) }
            var last: Tensor?
            for k in 0..<3 { last = try stream.img2img(image(UInt64(k))) }
            return try Self.backend.floats(try #require(last))
        }
        #expect(try run("xyz", update: "abc") == run("abc", update: nil))
    }

    /// Identical frames are skipped (p = 1 at cos = 1): the previous output comes back unchanged
    /// until the forced refresh.
    @Test func similarityFilterRepeatsTheLastOutput() throws {
        let stream = try pipeline { $0.tIndexList = [30]; $0.enableSimilarImageFilter = true; $0.similarImageFilterMaxSkipFrame = 1 }
        try stream.prepare(prompt: "abc")
        let frame = try image(9)
        let first = try Self.backend.floats(stream.img2img(frame))
        let second = try Self.backend.floats(stream.img2img(frame))
        #expect(second == first)
        #expect(stream.skippedFrames == 1)
        #expect(throws: StreamError.self) { try stream.img2img(Self.backend.tensor([Float](repeating: 0, count: 48), shape: [1, 4, 4, 3])) }
    }

    @Test func rejectsBadParameters() throws {
        #expect(throws: StreamError.self) { try pipeline { $0.width = 60 } }
        #expect(throws: StreamError.self) { try pipeline { $0.tIndexList = [50] } }
        let stream = try pipeline { _ in }
        #expect(throws: StreamError.notPrepared) { try stream.txt2img() }
    }

    /// Streams sharing one UNet call return what each returns alone, the similarity filter (which
    /// skips the repeated frame of stream A) included.
    @Test func severalStreamsInOneCallEqualEachAlone() throws {
        func make(_ prompt: String, seed: UInt64, filter: Bool) throws -> StreamPipeline {
            let p = try pipeline { $0.tIndexList = [20, 40]; $0.seed = seed; $0.enableSimilarImageFilter = filter }
            try p.prepare(prompt: prompt)
            return p
        }
        let together = [try make("a red circle", seed: 1, filter: true), try make("a blue square", seed: 2, filter: false)]
        let alone = [try make("a red circle", seed: 1, filter: true), try make("a blue square", seed: 2, filter: false)]
        let framesA = [try image(1), try image(1), try image(2)], framesB = [try image(3), try image(4), try image(5)]
        for call in 0..<3 {
            let shared = try StreamPipeline.img2img([(together[0], framesA[call]), (together[1], framesB[call])])
            expectClose(try Self.backend.floats(shared[0]), try Self.backend.floats(alone[0].img2img(framesA[call])),
                        relative: 1e-5, "A call \(call)")
            expectClose(try Self.backend.floats(shared[1]), try Self.backend.floats(alone[1].img2img(framesB[call])),
                        relative: 1e-5, "B call \(call)")
        }
        #expect(together[0].skippedFrames == 1 && alone[0].skippedFrames == 1)
    }
}
