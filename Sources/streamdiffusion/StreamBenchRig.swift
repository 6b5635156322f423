import ArgumentParser
import Foundation
import ModelFiles
import Models
import StreamDiffusion
import Tensors
import VulkanBackend

/// The models a stream benchmark times, and the one way every stream table measures a call: the
/// real-size sd-turbo architecture with random weights (the default), or a model given by --model.
struct StreamBenchRig {
    let backend: any Backend
    let tokenizer: CLIPTokenizer
    let text: CLIPTextModel
    let unet: UNet2DConditionModel
    let vae: StreamVAE
    let scheduler: LCMScheduler
    /// What is being timed, for the table headers.
    let summary: String
    let repeats: Int

    /// The sd-turbo architecture with random fp16 weights (written once into `cache`) and TAESD.
    static func synthetic(backend: any Backend, layouts: String, cache: String, tokenizer: String, repeats: Int,
                          log: @escaping (String) -> Void) throws -> StreamBenchRig {
        let models = SyntheticModels(layouts: URL(fileURLWithPath: layouts), cache: URL(fileURLWithPath: cache), log: log)
        return StreamBenchRig(
            backend: backend, tokenizer: try CLIPTokenizer(folder: URL(fileURLWithPath: tokenizer)),
            text: try CLIPTextModel(models.scope("sd-turbo-text-encoder", backend: backend), config: models.config("sd-turbo-text-encoder")),
            unet: try UNet2DConditionModel(models.scope("sd-turbo-unet", backend: backend), config: models.config("sd-turbo-unet")),
            vae: .tiny(try AutoencoderTiny(models.scope("taesd", backend: backend), config: models.config("taesd"))),
            scheduler: try LCMScheduler(), summary: "sd-turbo architecture with random weights, TAESD", repeats: repeats)
    }

    /// A model folder or cached hub id, loaded as the generate commands load it.
    static func loaded(_ model: String, backend: any Backend, repeats: Int) throws -> StreamBenchRig {
        let m = try StableDiffusionModel.load(model, backend: backend)
        return StreamBenchRig(backend: backend, tokenizer: m.tokenizer, text: m.textEncoder, unet: m.unet, vae: StreamVAE(m.vae),
                              scheduler: try LCMScheduler(contentsOf: m.folder.configURL("scheduler")),
                              summary: m.folder.root.lastPathComponent, repeats: repeats)
    }

    /// The CPU backend's thread count (0 on a GPU backend).
    var threads: Int { (backend as? CPUBackend)?.threads ?? 0 }

    /// Hands the backend's idle buffers back (before a peak-memory measurement).
    func releaseIdleMemory() throws {
        if let cpu = backend as? CPUBackend { cpu.pool.drain() }
        if let vulkan = backend as? VulkanBackend { try vulkan.releaseIdleMemory() }
    }

    /// OpBenchmark.time, waiting for the backend after each call (a GPU backend runs asynchronously).
    func time(warmup: Int, repeats: Int, _ body: () throws -> Void) throws -> [Double] {
        try OpBenchmark.time(warmup: warmup, repeats: repeats) { try body(); try backend.synchronize() }
    }

    /// The model's native picture size (8 × the UNet's sample_size).
    var nativeSize: Int { (unet.config.sampleSize ?? 64) * 8 }

    /// A prepared stream over the shared models (the negative prompt matters only with CFG).
    func stream(_ p: StreamParameters) throws -> StreamPipeline {
        let stream = try StreamPipeline(tokenizer: tokenizer, textEncoder: text, unet: unet, vae: vae,
                                        scheduler: scheduler, parameters: p, backend: backend)
        try stream.prepare(prompt: "a photograph of a mountain lake at dawn", negativePrompt: "blurry")
        return stream
    }

    /// Median milliseconds of one call once the stream is full (guidance 1.4 with CFG, else none).
    func msPerCall(size: Int, indices: [Int], cfg: CFGType, batch: Bool, img2img: Bool) throws -> Double {
        var p = StreamParameters()
        (p.width, p.height, p.tIndexList, p.cfgType, p.useDenoisingBatch) = (size, size, indices, cfg, batch)
        p.guidanceScale = cfg == .none ? 1 : 1.4
        let stream = try stream(p)
        let frame = try OpBenchmark.random(backend, [1, size, size, 3])
        let call = { _ = try img2img ? stream.img2img(frame) : stream.txt2img() }
        for _ in 0..<(batch ? indices.count : 1) { try call() }   // fill the stream
        return OpBenchmark.median(try time(warmup: 0, repeats: repeats, call))
    }

    /// UNet rows one frame costs: full CFG doubles them, initialize adds one.
    static func unetRows(steps: Int, cfg: CFGType) -> Int {
        cfg == .full ? 2 * steps : (cfg == .initialize ? steps + 1 : steps)
    }

    /// img2img starts part-way into the schedule (index 32); txt2img from pure noise at 0.
    static func indices(_ n: Int, img2img: Bool) -> [Int] { StreamParameters.spreadIndices(n, from: img2img ? 32 : 0) }
}

/// The options every stream benchmark shares.
struct StreamBenchModelOptions: ParsableArguments {
    @Option(help: "A model folder or cached hub id to time (default: the sd-turbo architecture with random weights).")
    var model: String?

    @OptionGroup var compute: BackendOptions

    @Option(help: "Timed calls per measurement (the median is reported).")
    var repeats = 3

    @Option(help: "Folder of layout JSON files (tools/export_layouts.py).")
    var layouts = "Tests/Fixtures/layouts"

    @Option(help: "Tokenizer folder (the real CLIP vocabulary).")
    var tokenizer = "Tests/Fixtures/tokenizer/sd21"

    @Option(help: "Where the synthetic model folders are written (reused across runs).")
    var cache = FileManager.default.temporaryDirectory.appendingPathComponent("streamdiffusion-synthetic").path

    func rig(log: @escaping (String) -> Void) throws -> StreamBenchRig {
        guard repeats >= 1 else { throw ValidationError("--repeats must be ≥ 1") }
        let backend = try compute.backend()
        if let model { return try .loaded(model, backend: backend, repeats: repeats) }
        return try .synthetic(backend: backend, layouts: layouts, cache: cache, tokenizer: tokenizer, repeats: repeats, log: log)
    }
}
