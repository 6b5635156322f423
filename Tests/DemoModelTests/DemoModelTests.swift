import DemoEvaluation
import Foundation
import Media
import ModelFiles
import Models
import StreamDiffusion
@testable import StreamDiffusionKit
import Tensors
import Testing
import VulkanBackend

/// End-to-end meaning: the bundled demo model (Models/demo), run through the Swift stream pipeline,
/// draws what the prompt names. Each picture is judged by `PictureMeasures` (background colour,
/// foreground hue, circle/square/star), which is first checked on ground-truth pictures rendered by
/// the training-data generator. A case passes when all three match (the measures, the prompt grid
/// and the judgement are the DemoEvaluation module's, shared with `streamdiffusion bench guidance`).
/// The bar is 80 % of cases; a random-weight model of the same architecture passes none, by chance about 1 in 200
/// (1/10 backgrounds × 1/7 hues × 1/3 shapes), so the bar separates a model that learned the prompts
/// from one that did not by a wide margin.
@Suite(.serialized) struct DemoModelTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let demo = root.appendingPathComponent("Models/demo")
    static let fixtures = root.appendingPathComponent("Tests/Fixtures/demo")

    static func load(_ folder: URL) throws -> (StableDiffusionModel, LCMScheduler, CPUBackend) {
        let backend = try CPUBackend()
        let model = try StableDiffusionModel.load(folder.path, backend: backend)
        return (model, try LCMScheduler(contentsOf: model.folder.configURL("scheduler")), backend)
    }

    /// Each case through txt2img with `configure`d parameters, once per seed, as the CLI runs it: stream
    /// batch, the first S − 1 calls of latency run before the picture is taken.
    static func score(_ folder: URL, seeds: [UInt64], configure: (inout StreamParameters) -> Void) throws -> DemoScore {
        let (model, scheduler, backend) = try load(folder)
        var score = DemoScore()
        for c in DemoCase.grid {
            for seed in seeds {
                var p = StreamParameters()
                (p.width, p.height, p.seed) = (128, 128, seed)
                p.cfgType = .none   // txt2img's default, as in the official wrapper (its RCFG needs an input's noise)
                configure(&p)
                let stream = try StreamPipeline(model: model, scheduler: scheduler, parameters: p, backend: backend)
                try stream.prepare(prompt: c.prompt)
                var latent = try stream.txt2img()
                for _ in 0..<stream.latency { latent = try stream.txt2img() }
                let image = try RGBImage(floats: backend.floats(latent), width: 128, height: 128)
                score.judge(image, c, label: "\(c) seed \(seed)")
            }
        }
        return score
    }

    @Test func measuresReadTheTrainingPictures() throws {
        struct Fixture: Decodable { let file: String, colour: String, shape: String, background: String }
        let cases = try JSONDecoder().decode([Fixture].self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("cases.json")))
        #expect(cases.count == 12)
        for f in cases {
            let m = PictureMeasures(try ImageIO().read(url: Self.fixtures.appendingPathComponent(f.file)))
            #expect(Palette.nearest(m.background) == f.background, "\(f.file)")
            let hue = Palette.chromatic.contains(f.colour) ? m.foreground.flatMap(Palette.nearestHue) : m.foreground.map(Palette.nearest)
            #expect(hue == f.colour, "\(f.file)")
            #expect(m.shape?.rawValue == f.shape, "\(f.file): solidity \(m.solidity), circularity \(m.circularity)")
        }
    }

    @Test func demoModelDrawsThePromptInFourSteps() throws {
        // The txt2img defaults: t-index 0, 16, 32, 45, no guidance.
        let score = try Self.score(Self.demo, seeds: [1, 2]) { p in p.tIndexList = [0, 16, 32, 45] }
        print("demo model, \(#function): \(score)")
        #expect(score.passRate >= 0.8, "\(score)")
    }

    @Test func demoModelDrawsThePromptInOneStep() throws {
        let score = try Self.score(Self.demo, seeds: [3, 4]) { p in p.tIndexList = [0] }
        print("demo model, \(#function): \(score)")
        #expect(score.passRate >= 0.8, "\(score)")
    }

    @Test func randomWeightsFailTheSameTest() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("random-demo-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.copyItem(at: Self.demo, to: folder)
        for (component, file) in [("unet", "diffusion_pytorch_model.fp16.safetensors"), ("vae", "diffusion_pytorch_model.fp16.safetensors"),
                                  ("text_encoder", "model.fp16.safetensors")] {
            let dir = folder.appendingPathComponent(component)
            let layout = ModelLayout(configJSON: try Data(contentsOf: dir.appendingPathComponent("config.json")),
                                     weights: try SafeTensorsFile(url: dir.appendingPathComponent(file)))
            try layout.write(to: dir, weightsName: file, seed: 7)
        }
        let score = try Self.score(folder, seeds: [1]) { p in p.tIndexList = [0, 16, 32, 45] }
        print("random weights: \(score)")
        #expect(score.passRate <= 0.1, "\(score)")
    }

    /// img2img: a red circle with the prompt "a blue square" comes out bluer than the same frame with
    /// its own caption, and bluer than it went in.
    @Test func img2imgMovesTowardThePrompt() throws {
        let (model, scheduler, backend) = try Self.load(Self.demo)
        let frame = try ImageIO().read(url: Self.fixtures.appendingPathComponent("a-red-circle-on-a-white-background.png"))
        func blueness(_ image: RGBImage) -> Float {
            stride(from: 0, to: image.pixels.count, by: 3).reduce(Float(0)) { sum, i in
                sum + Float(image.pixels[i + 2]) - Float(image.pixels[i])
            } / Float(image.width * image.height)
        }
        func restyle(_ prompt: String) throws -> RGBImage {
            var p = StreamParameters()
            (p.width, p.height, p.tIndexList, p.useDenoisingBatch) = (128, 128, [16, 32, 45], false)
            let stream = try StreamPipeline(model: model, scheduler: scheduler, parameters: p, backend: backend)
            try stream.prepare(prompt: prompt)
            let input = try backend.tensor(frame.floats(), shape: [1, 128, 128, 3])
            return try RGBImage(floats: backend.floats(stream.img2img(input)), width: 128, height: 128)
        }
        let toBlue = blueness(try restyle("a blue square on a white background"))
        let same = blueness(try restyle("a red circle on a white background"))
        let before = blueness(frame)
        // The red disc covers about 12 % of the frame at B − R ≈ −180: the whole frame averages ≈ −22.
        // Turning the disc blue (B − R ≈ +180) moves the mean by ≈ +45; ask for over half of that.
        #expect(toBlue - before > 20, "blue prompt: \(toBlue), frame \(before)")
        #expect(toBlue - same > 20, "blue prompt: \(toBlue), own caption \(same)")
    }
}

/// The seeds' facade over the same pipeline: its pictures carry the prompt's meaning too.
@Suite(.serialized) struct FacadeTests {
    @Test func scheduleIndicesSpreadTheSteps() {
        #expect(StreamParameters.spreadIndices(1, from: 0) == [0])
        #expect(StreamParameters.spreadIndices(4, from: 0) == [0, 15, 30, 45])
        #expect(StreamParameters.spreadIndices(2, from: 32) == [32, 45])
        #expect(StreamParameters.spreadIndices(10, from: 0) == [0, 5, 10, 15, 20, 25, 30, 35, 40, 45])
    }

    /// The seeds' loop — one pipeline, prompts one after another — scored like the pipeline itself.
    @Test func promptsInALoopGiveTheirOwnPictures() throws {
        for steps in [1, 4] {
            let pipe = try StreamDiffusionPipeline(modelID: DemoModelTests.demo.path, denoisingSteps: steps)
            var score = DemoScore()
            for c in DemoCase.grid {
                score.judge(try pipe(prompt: c.prompt), c, label: "\(c)")
            }
            print("facade, \(steps) step(s): \(score)")
            #expect(score.passRate >= 0.8, "\(steps) step(s): \(score)")
        }
    }

    /// The facade on the Vulkan backend (lavapipe here) draws what it draws on the fp32 CPU
    /// backend: both compute in fp32, so pictures differ at most by a rounding of one 8-bit level
    /// where a value sits on a rounding edge (2 levels allowed for the odd double flip).
    @Test func vulkanBackendDrawsTheSamePictures() throws {
        let vulkan = try VulkanBackend(options: .init(allowCPU: true))
        let cpu = try CPUBackend(threads: 2, precision: .float32)
        func pictures(_ backend: any Backend) throws -> [RGBImage] {
            let pipe = try StreamDiffusionPipeline(modelID: DemoModelTests.demo.path, denoisingSteps: 2, width: 64, height: 64,
                                                   backend: backend)
            let drawn = try pipe(prompt: DemoCase.grid[0].prompt)
            return [drawn, try pipe.img2img(drawn, prompt: DemoCase.grid[4].prompt)]
        }
        for (a, b) in zip(try pictures(vulkan), try pictures(cpu)) {
            let worst = zip(a.pixels, b.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
            #expect(a.width == 64 && b.width == 64 && worst <= 2, "largest difference \(worst) levels")
        }
    }

    @Test func badArgumentsAreClearErrors() {
        #expect(throws: StreamDiffusionPipelineError.self) { try StreamDiffusionPipeline(modelID: DemoModelTests.demo.path, denoisingSteps: 0) }
        #expect(throws: StreamDiffusionPipelineError.self) { try StreamDiffusionPipeline(modelID: DemoModelTests.demo.path, width: 100) }
    }
}
