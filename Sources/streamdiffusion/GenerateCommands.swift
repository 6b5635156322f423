import ArgumentParser
import Foundation
import Media
import ModelFiles
import Models
import StreamDiffusion
import Tensors

/// Options shared by every command that runs the stream (the official wrapper's parameters).
struct StreamOptions: ParsableArguments {
    @Option(help: "A diffusers folder or a Hugging Face id found in the local cache (default: stabilityai/sd-turbo when cached, else the bundled demo model Models/demo).")
    var model: String?

    @Option(help: "The prompt (serve: the prompt each client starts with).")
    var prompt: String?

    @Option(help: "Negative prompt (used by --cfg-type full and initialize).")
    var negativePrompt = ""

    @Option(help: "Seed of the torch-compatible generator that draws all noise.")
    var seed: UInt64 = 2

    @Option(help: "Indices into the LCM schedule, comma-separated (default: txt2img 0,16,32,45; img2img 32,45).")
    var tIndexList: String?

    @Option(help: "Residual CFG: none, full, self or initialize (default: txt2img none, as the official wrapper requires; others self).")
    var cfgType: String?

    @Option(help: "Guidance scale (active above 1).")
    var guidanceScale: Float = 1.2

    @Option(help: "Scale of the virtual negative noise for self/initialize.")
    var delta: Float = 1

    @Option(help: "Length of the LCM schedule that --t-index-list indexes.")
    var steps = 50

    @Option(help: "Image width (multiple of 8; default: the model's native size, 8 × the UNet's sample_size).")
    var width: Int?

    @Option(help: "Image height (multiple of 8; default: the model's native size).")
    var height: Int?

    @OptionGroup var compute: BackendOptions

    @Option(help: "VAE: the model's own (default), 'taesd' (madebyollin/taesd from the cache) or a TAESD folder.")
    var vae: String?

    @Option(help: "A LoRA file (e.g. LCM-LoRA) fused into the UNet at load.")
    var lcmLora: String?

    @Option(help: "Scale of the fused LoRA.")
    var loraScale: Float = 1

    @Flag(help: "Sequential denoising (one UNet call per step) instead of stream batch.")
    var noDenoisingBatch = false

    func validate() throws {
        if let cfgType, CFGType(rawValue: cfgType) == nil { throw ValidationError("--cfg-type must be none, full, self or initialize") }
        for (name, side) in [("--width", width), ("--height", height)] {
            if let side, side <= 0 || side % 8 != 0 { throw ValidationError("\(name) must be a positive multiple of 8 (got \(side))") }
        }
    }

    /// The stream's parameters; the size defaults to the model's native one, as in diffusers.
    func parameters(defaultIndices: [Int], defaultCFG: CFGType = .self, model: StableDiffusionModel) throws -> StreamParameters {
        var p = StreamParameters()
        let (width, height) = (self.width ?? model.nativeSize, self.height ?? model.nativeSize)
        if let tIndexList {
            p.tIndexList = try tIndexList.split(separator: ",").map { part in
                guard let i = Int(part.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("--t-index-list: '\(part)' is not a number")
                }
                return i
            }
        } else {
            p.tIndexList = defaultIndices
        }
        let cfg = cfgType.flatMap(CFGType.init(rawValue:)) ?? defaultCFG   // checked by validate()
        (p.cfgType, p.guidanceScale, p.delta, p.seed) = (cfg, guidanceScale, delta, seed)
        (p.numInferenceSteps, p.width, p.height) = (steps, width, height)
        p.useDenoisingBatch = !noDenoisingBatch
        return p
    }

    /// Loads the model, its scheduler and the backend, printing what was loaded.
    func load() throws -> (StableDiffusionModel, LCMScheduler, any Backend) {
        let backend = try compute.backend()
        let start = Date()
        let tinyVAE = vae == "taesd" ? "madebyollin/taesd" : (vae == "kl" ? nil : vae)
        let model = try StableDiffusionModel.load(DefaultModel.argument(model), backend: backend, tinyVAE: tinyVAE,
                                                  lora: lcmLora.map { URL(fileURLWithPath: $0) }, loraScale: loraScale)
        if !model.unmatchedLoRAModules.isEmpty {
            print("warning: \(model.unmatchedLoRAModules.count) LoRA module(s) matched no UNet weight, e.g. \(model.unmatchedLoRAModules[0])")
        }
        let scheduler = try LCMScheduler(contentsOf: model.folder.configURL("scheduler"))
        print("loaded \(model.folder.root.path) in \(String(format: "%.1f", Date().timeIntervalSince(start))) s on \(backend)")
        return (model, scheduler, backend)
    }

    /// Loads the model and builds the stream, prepared for `--prompt`; `configure` adjusts the
    /// parameters a command adds to the shared options.
    func stream(defaultIndices: [Int], defaultCFG: CFGType = .self,
                configure: (inout StreamParameters) -> Void = { _ in }) throws -> StreamPipeline {
        guard let prompt else { throw ValidationError("--prompt is required") }
        let (model, scheduler, backend) = try load()
        var parameters = try self.parameters(defaultIndices: defaultIndices, defaultCFG: defaultCFG, model: model)
        configure(&parameters)
        let stream = try StreamPipeline(model: model, scheduler: scheduler, parameters: parameters, backend: backend)
        try stream.prepare(prompt: prompt, negativePrompt: negativePrompt)
        return stream
    }
}

/// The backend `--dtype` and `--threads` ask for (nil: bf16 where the CPU has AVX-512 BF16).
func cpuBackend(dtype: String?, threads: Int?) throws -> CPUBackend {
    switch dtype {
    case nil: return try CPUBackend(threads: threads, precision: .automatic)
    case "fp32": return try CPUBackend(threads: threads, precision: .float32)
    case "bf16": return try CPUBackend(threads: threads, precision: .bfloat16)
    default: throw ValidationError("--dtype must be fp32 or bf16")
    }
}

func imageFrom(_ tensor: Tensor, backend: any Backend) throws -> RGBImage {
    try RGBImage(floats: backend.floats(tensor), width: tensor.shape[2], height: tensor.shape[1])
}

struct Txt2ImgCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "txt2img", abstract: "Generate images from a prompt.")

    @OptionGroup var options: StreamOptions

    @Option(help: "Number of images; with more than one, files are numbered (out-000.png, …).")
    var count = 1

    @Option(help: "Output image (.png or .jpg).")
    var output: String

    func validate() throws {
        guard count >= 1 else { throw ValidationError("--count must be ≥ 1") }
    }

    func run() throws {
        // No guidance by default: RCFG's virtual negative is the input's noise, which txt2img lacks.
        let stream = try options.stream(defaultIndices: [0, 16, 32, 45], defaultCFG: .none)
        let backend = stream.backend
        let url = URL(fileURLWithPath: output)
        let start = Date()
        for k in 0..<count {
            // A stream of S steps finishes a latent every call after the first S − 1.
            var image = try stream.txt2img()
            for _ in 0..<stream.latency { image = try stream.txt2img() }
            let target = count == 1 ? url : numbered(url, k)
            try ImageIO().write(imageFrom(image, backend: backend), to: target)
            print("wrote \(target.path)")
        }
        print(String(format: "%.2f s per image", Date().timeIntervalSince(start) / Double(count)))
    }
}

func numbered(_ url: URL, _ k: Int) -> URL {
    let base = url.deletingPathExtension().lastPathComponent, ext = url.pathExtension
    return url.deletingLastPathComponent().appendingPathComponent(String(format: "%@-%03d.%@", base, k, ext))
}

struct Img2ImgCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "img2img",
        abstract: "Restyle an image, or a folder of frames (in name order) as one stream.")

    @OptionGroup var options: StreamOptions

    @Option(help: "An image, or a folder of frames.")
    var input: String

    @Option(help: "An image (for an image input) or a folder (for a folder input).")
    var output: String

    func run() throws {
        let fm = FileManager.default
        var isFolder: ObjCBool = false
        guard fm.fileExists(atPath: input, isDirectory: &isFolder) else { throw ValidationError("--input \(input) does not exist") }
        let inputs: [URL] = isFolder.boolValue
            ? try fm.contentsOfDirectory(atPath: input).sorted()
                .filter { ["png", "jpg", "jpeg"].contains(($0 as NSString).pathExtension.lowercased()) }
                .map { URL(fileURLWithPath: input).appendingPathComponent($0) }
            : [URL(fileURLWithPath: input)]
        guard !inputs.isEmpty else { throw ValidationError("--input \(input) holds no .png or .jpg frames") }
        let stream = try options.stream(defaultIndices: [32, 45])
        let backend = stream.backend
        let outputs: [URL]
        if isFolder.boolValue {
            try fm.createDirectory(atPath: output, withIntermediateDirectories: true)
            outputs = inputs.map { URL(fileURLWithPath: output).appendingPathComponent($0.deletingPathExtension().lastPathComponent + ".png") }
        } else {
            outputs = [URL(fileURLWithPath: output)]
        }
        let io = ImageIO()
        let frames = try inputs.map { url -> Tensor in
            let (width, height) = (stream.parameters.width, stream.parameters.height)
            let image = try io.read(url: url).resizedToFill(width: width, height: height)
            return try backend.tensor(image.floats(), shape: [1, height, width, 3])
        }
        // Output k is the stream's answer to input k: the S − 1 calls of latency are flushed by
        // repeating the last frame, so every input yields exactly one output, in order.
        let latency = stream.latency
        let start = Date()
        var written = 0
        for call in 0..<(frames.count + latency) {
            let result = try stream.img2img(frames[min(call, frames.count - 1)])
            guard call >= latency else { continue }
            try io.write(imageFrom(result, backend: backend), to: outputs[written])
            written += 1
        }
        let seconds = Date().timeIntervalSince(start)
        print("wrote \(written) frame(s) to \(isFolder.boolValue ? output : outputs[0].path): "
              + String(format: "%.2f frames/s", Double(frames.count) / seconds)
              + (stream.skippedFrames > 0 ? ", \(stream.skippedFrames) skipped by the similarity filter" : ""))
    }
}
