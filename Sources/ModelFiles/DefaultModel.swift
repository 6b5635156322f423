import Foundation

/// The model used when none is named: sd-turbo when the Hugging Face cache has it, else the demo
/// model bundled with the project (`Models/demo`, trained by tools/train_demo_model.py), so every
/// command works out of the box without a download.
public struct DefaultModel: Sendable, Equatable {
    public static let hubID = "stabilityai/sd-turbo"
    /// Overrides where the bundled demo model is looked for.
    public static let demoEnvironmentKey = "STREAMDIFFUSION_DEMO_MODEL"
    static let demoRelativePath = "Models/demo"

    /// A `--model` argument (hub id or folder path).
    public let model: String
    /// One line saying which model was chosen and why.
    public let notice: String

    /// `executable` is this program's path: the demo folder is searched in the current directory,
    /// then upwards from the executable (a SwiftPM build lives at `.build/<triple>/<config>/`).
    public static func choose(locator: ModelLocator = ModelLocator(), executable: URL? = executableURL) throws -> DefaultModel {
        if (try? locator.resolve(hubID)) != nil {
            return DefaultModel(model: hubID, notice: "no --model given: using \(hubID) from the Hugging Face cache")
        }
        guard let demo = demoFolder(locator: locator, executable: executable) else {
            throw ModelFilesError.modelNotFound(
                id: "(default)",
                searched: [locator.repoFolder(hubID).path] + demoCandidates(locator: locator, executable: executable).map(\.path),
                hint: "name a model with --model (a diffusers folder or a cached hub id), or set \(demoEnvironmentKey) to the demo model folder")
        }
        return DefaultModel(model: demo.path,
                            notice: "no --model given and no \(hubID) in the Hugging Face cache: using the bundled demo model "
                                + "(\(demo.path); 128×128 coloured shapes; real use takes sd-turbo or any SD 1.5/2.1 model)")
    }

    /// `given`, else the default's model after announcing the choice (one line).
    public static func argument(_ given: String?, announce: (String) -> Void = { print($0) }) throws -> String {
        if let given { return given }
        let chosen = try choose()
        announce(chosen.notice)
        return chosen.model
    }

    static func demoCandidates(locator: ModelLocator, executable: URL?) -> [URL] {
        if let path = locator.environment[demoEnvironmentKey], !path.isEmpty {
            return [URL(fileURLWithPath: path, isDirectory: true)]
        }
        var candidates = [locator.currentDirectory.appendingPathComponent(demoRelativePath, isDirectory: true)]
        var folder = executable?.resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            guard let current = folder else { break }
            candidates.append(current.appendingPathComponent(demoRelativePath, isDirectory: true))
            folder = current.deletingLastPathComponent()
        }
        var seen = Set<String>()
        return candidates.filter { seen.insert($0.standardizedFileURL.path).inserted }
    }

    static func demoFolder(locator: ModelLocator, executable: URL?) -> URL? {
        demoCandidates(locator: locator, executable: executable).first {
            FileManager.default.fileExists(atPath: $0.appendingPathComponent("model_index.json").path)
        }?.standardizedFileURL
    }

    public static var executableURL: URL? {
        Bundle.main.executableURL ?? CommandLine.arguments.first.map { URL(fileURLWithPath: $0) }
    }
}
