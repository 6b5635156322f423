import Foundation
import Testing
import ModelFiles
@testable import StreamDiffusion

/// Tests/Fixtures/scheduler/lcm.json, written by tools/make_scheduler_fixtures.py (diffusers 0.39.0,
/// torch 2.13.0 CPU). Float32 values are stored as 8-hex-digit bit patterns, doubles as 16.
private struct SchedulerFixture: Decodable {
    struct Schedule: Decodable {
        let numTrainTimesteps: Int
        let betaStart: Double
        let betaEnd: Double
        let betas: [String]
        let alphas: [String]
        let alphasCumprod: [String]
    }
    struct TorchSqrt: Decodable {
        let alphaProdSqrt: [String]
        let betaProdSqrt: [String]
    }
    struct TimestepCase: Decodable {
        let numInferenceSteps: Int?
        let strength: Double
        let originalInferenceSteps: Int?
        let customTimesteps: [Int]?
        let timesteps: [Int]?
        let error: String?
    }
    struct Scaling: Decodable {
        let timestep: Int
        let cSkip: String
        let cOut: String
        let cSkipF32: String
        let cOutF32: String
    }
    struct Values: Decodable {
        let bits: [String]
        var floats: [Float] { bits.map(f32) }
    }
    struct Step: Decodable {
        let stepIndex: Int
        let timestep: Int
        let prevTimestep: Int?
        let modelOutput: Values
        let sample: Values
        let noise: Values?
        let denoised: Values
        let prevSample: Values
    }
    struct Chain: Decodable {
        let name: String
        let predictionType: String
        let numInferenceSteps: Int
        let timesteps: [Int]
        let steps: [Step]
    }
    struct Euler: Decodable {
        let numInferenceSteps: Int
        let timesteps: [Float]
    }
    let noiseSchedules: [String: Schedule]
    let torchSqrt: TorchSqrt
    let lcmTimesteps: [TimestepCase]
    let boundaryScalings: [Scaling]
    let steps: [Chain]
    let eulerTrailing: [Euler]

    static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures", isDirectory: true)

    static let shared: SchedulerFixture = {
        let url = fixtures.appendingPathComponent("scheduler/lcm.json")
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do {
            return try decoder.decode(SchedulerFixture.self, from: Data(contentsOf: url))
        } catch {
            fatalError("cannot read \(url.path): \(error)")
        }
    }()
}

private func f32(_ hex: String) -> Float { Float(bitPattern: UInt32(hex, radix: 16)!) }
private func f64(_ hex: String) -> Double { Double(bitPattern: UInt64(hex, radix: 16)!) }

/// Distance in units in the last place between two finite floats of the same sign.
private func ulps(_ a: Float, _ b: Float) -> Int {
    abs(Int(Int32(bitPattern: a.bitPattern)) - Int(Int32(bitPattern: b.bitPattern)))
}

@Suite struct SchedulerTests {
    private let fixture = SchedulerFixture.shared

    // MARK: Noise schedule

    @Test(arguments: BetaSchedule.allCases)
    func noiseScheduleIsBitExact(schedule: BetaSchedule) throws {
        let ref = try #require(fixture.noiseSchedules[schedule.rawValue])
        let ns = try NoiseSchedule(config: NoiseScheduleConfig(
            numTrainTimesteps: ref.numTrainTimesteps, betaStart: ref.betaStart, betaEnd: ref.betaEnd,
            betaSchedule: schedule))
        #expect(ns.count == 1000)
        #expect(ns.betas.map(\.bitPattern) == ref.betas.map { f32($0).bitPattern })
        #expect(ns.alphas.map(\.bitPattern) == ref.alphas.map { f32($0).bitPattern })
        #expect(ns.alphasCumprod.map(\.bitPattern) == ref.alphasCumprod.map { f32($0).bitPattern })
    }

    /// torch.cumprod accumulates in double; a float32 running product would not be bit-exact.
    @Test func float32RunningProductIsNotTorchCumprod() throws {
        let ref = try #require(fixture.noiseSchedules["scaled_linear"]).alphasCumprod.map(f32)
        let alphas = try NoiseSchedule().alphas
        var acc: Float = 1
        let running = alphas.map { acc *= $0; return acc }
        let worst = zip(running, ref).map { ulps($0, $1) }.max()!
        #expect(worst > 0 && worst <= 15)  // measured: 15 ulp, ~9.5e-7 relative
    }

    @Test func sdScheduleKnownValues() throws {
        let ns = try NoiseSchedule()
        #expect(abs(ns.alphasCumprod[0] - 0.99915) < 1e-7)
        #expect(abs(ns.alphasCumprod[999] - 0.00466009) < 1e-8)
        #expect(ns.betas.first == Float(0.00085.squareRoot()) * Float(0.00085.squareRoot()))
    }

    @Test func schedulerConfigFilesGiveTheSDSchedule() throws {
        let ref = try #require(fixture.noiseSchedules["scaled_linear"]).alphasCumprod.map { f32($0).bitPattern }
        for model in ["tiny-sd15", "tiny-sd21"] {  // an LCMScheduler and an EulerDiscreteScheduler config
            let url = SchedulerFixture.fixtures.appendingPathComponent("models/\(model)/scheduler/scheduler_config.json")
            let ns = try NoiseSchedule(contentsOf: url)
            #expect(ns.alphasCumprod.map(\.bitPattern) == ref)
            let lcm = try LCMScheduler(contentsOf: url)
            #expect(lcm.alphasCumprod == ns.alphasCumprod)
            #expect(lcm.config.timestepScaling == 10)
            #expect(lcm.config.originalInferenceSteps == 50)
        }
        let sd15 = try LCMScheduler(contentsOf: SchedulerFixture.fixtures
            .appendingPathComponent("models/tiny-sd15/scheduler/scheduler_config.json"))
        #expect(sd15.config == LCMSchedulerConfig())
        let sd21 = try LCMScheduler(contentsOf: SchedulerFixture.fixtures
            .appendingPathComponent("models/tiny-sd21/scheduler/scheduler_config.json"))
        #expect(sd21.config.stepsOffset == 1)
        #expect(sd21.config.timestepSpacing == "trailing")
    }

    @Test func configDecoding() throws {
        func decode(_ json: String) throws -> LCMSchedulerConfig {
            try ConfigFile.decode(LCMSchedulerConfig.self, from: Data(json.utf8), path: "scheduler_config.json")
        }
        let c = try decode("""
            {"_class_name": "LCMScheduler", "beta_schedule": "linear", "beta_start": 0.0001, "beta_end": 0.02,
             "num_train_timesteps": 500, "set_alpha_to_one": false, "prediction_type": "v_prediction",
             "original_inference_steps": 25, "timestep_scaling": 5.0, "trained_betas": null, "something_new": [1, 2]}
            """)
        #expect(c.noise == NoiseScheduleConfig(numTrainTimesteps: 500, betaStart: 0.0001, betaEnd: 0.02, betaSchedule: .linear))
        #expect(c.setAlphaToOne == false && c.predictionType == .vPrediction)
        #expect(c.originalInferenceSteps == 25 && c.timestepScaling == 5)
        #expect(try decode("{}") == LCMSchedulerConfig())
        // Round trip through the encoder.
        let again = try JSONDecoder().decode(LCMSchedulerConfig.self, from: JSONEncoder().encode(c))
        #expect(again == c)
        let s = try LCMScheduler(config: c)
        #expect(s.alphasCumprod.count == 500)
        #expect(s.finalAlphaCumprod == s.alphasCumprod[0])
        #expect(try LCMScheduler().finalAlphaCumprod == 1)

        #expect(throws: ModelFilesError.self) { try decode(#"{"beta_schedule": "sigmoid"}"#) }
        #expect(throws: ModelFilesError.self) { try decode(#"{"prediction_type": "flow"}"#) }
        #expect(throws: SchedulerError.self) { try LCMScheduler(config: decode(#"{"thresholding": true}"#)) }
        #expect(throws: SchedulerError.self) { try LCMScheduler(config: decode(#"{"rescale_betas_zero_snr": true}"#)) }
        #expect(throws: SchedulerError.self) { try LCMScheduler(config: decode(#"{"num_train_timesteps": 0}"#)) }

        let trained = try NoiseSchedule(config: NoiseScheduleConfig(trainedBetas: [0.1, 0.2, 0.5]))
        #expect(trained.betas == [0.1, 0.2, 0.5])
        #expect(trained.alphas == trained.betas.map { 1 - $0 })
        let a = trained.alphas.map(Double.init)
        #expect(trained.alphasCumprod == [Float(a[0]), Float(a[0] * a[1]), Float(a[0] * a[1] * a[2])])
    }

    /// torch's CPU float32 sqrt (MKL) is not correctly rounded; Swift's is. Within 1 ulp everywhere.
    @Test func sqrtTablesWithinOneUlpOfTorch() throws {
        let ns = try NoiseSchedule()
        let alpha = fixture.torchSqrt.alphaProdSqrt.map(f32), beta = fixture.torchSqrt.betaProdSqrt.map(f32)
        var differing = 0
        for t in 0..<1000 {
            let da = ulps(ns.alphaProdSqrt(t), alpha[t]), db = ulps(ns.betaProdSqrt(t), beta[t])
            #expect(da <= 1 && db <= 1, "t = \(t)")
            differing += (da > 0 ? 1 : 0) + (db > 0 ? 1 : 0)
        }
        print("sqrt(alphas_cumprod), sqrt(1 - alphas_cumprod): \(differing) of 2000 values differ from torch by 1 ulp")
    }

    // MARK: Timesteps

    @Test func timestepsMatchDiffusers() throws {
        let s = try LCMScheduler()
        for c in fixture.lcmTimesteps {
            let label = "n=\(String(describing: c.numInferenceSteps)) strength=\(c.strength) "
                + "original=\(String(describing: c.originalInferenceSteps)) custom=\(String(describing: c.customTimesteps))"
            let compute: () throws -> [Int] = {
                if let custom = c.customTimesteps {
                    return try s.timesteps(custom: custom, strength: c.strength, originalInferenceSteps: c.originalInferenceSteps)
                }
                return try s.timesteps(numInferenceSteps: c.numInferenceSteps!, strength: c.strength,
                                       originalInferenceSteps: c.originalInferenceSteps)
            }
            if let expected = c.timesteps {
                #expect(try compute() == expected, "\(label)")
            } else {
                #expect(c.error == "ValueError", "\(label)")
                #expect(throws: SchedulerError.self, "\(label)") { try compute() }
            }
        }
        #expect(fixture.lcmTimesteps.count >= 33)
    }

    @Test func timestepRequestsDiffusersCannotServe() throws {
        let s = try LCMScheduler()
        #expect(throws: SchedulerError.self) { try s.timesteps(numInferenceSteps: 0) }
        #expect(throws: SchedulerError.self) { try s.timesteps(numInferenceSteps: 4, strength: 1.5) }
        #expect(throws: SchedulerError.self) { try s.timesteps(numInferenceSteps: 4, strength: .nan) }
        #expect(throws: SchedulerError.self) { try s.timesteps(numInferenceSteps: 4, originalInferenceSteps: 0) }
        #expect(throws: SchedulerError.self) { try s.timesteps(custom: []) }
        #expect(throws: SchedulerError.self) { try s.timesteps(custom: [999, 499, -1]) }
        #expect(throws: SchedulerError.self) { try s.timesteps(custom: [999, 499], strength: 0.1) }
        // StreamDiffusion's t_index_list indexes the 50-step table: 999 - 20 i.
        let table = try s.timesteps(numInferenceSteps: 50)
        #expect(table == (0..<50).map { 999 - 20 * $0 })
        #expect([32, 45].map { table[$0] } == [359, 99])
        #expect([0, 16, 32, 45].map { table[$0] } == [999, 679, 359, 99])
    }

    @Test func eulerTrailingTimesteps() throws {
        for c in fixture.eulerTrailing {
            #expect(try TimestepSpacing.trailing.timesteps(numInferenceSteps: c.numInferenceSteps, stepsOffset: 1) == c.timesteps)
        }
        // Spot values computed with diffusers 0.39 (not in the fixture): n = 3, 7 trailing; leading.
        #expect(try TimestepSpacing.trailing.timesteps(numInferenceSteps: 3) == [999, 666, 332])
        #expect(try TimestepSpacing.trailing.timesteps(numInferenceSteps: 7) == [999, 856, 713, 570, 428, 285, 142])
        #expect(try TimestepSpacing.leading.timesteps(numInferenceSteps: 4, stepsOffset: 1) == [751, 501, 251, 1])
        #expect(throws: SchedulerError.self) { try TimestepSpacing.trailing.timesteps(numInferenceSteps: 0) }
    }

    // MARK: Scalings and steps

    @Test func boundaryScalingsMatchDiffusers() throws {
        let s = try LCMScheduler()
        var worstF32 = 0
        for c in fixture.boundaryScalings {
            let (cSkip, cOut) = s.boundaryScalings(timestep: c.timestep)
            // Python-int timestep: double math, bit-exact.
            #expect(cSkip.bitPattern == f64(c.cSkip).bitPattern, "t = \(c.timestep)")
            #expect(cOut.bitPattern == f64(c.cOut).bitPattern, "t = \(c.timestep)")
            // Tensor timestep (torch float32 math, its sqrt): within 2 ulp (<= 1.2e-7 relative).
            let k = try s.scalars(timestep: c.timestep)
            let refSkip = f32(c.cSkipF32), refOut = f32(c.cOutF32)
            #expect(abs(k.cSkip - refSkip) <= 1e-7 * abs(refSkip), "t = \(c.timestep)")
            #expect(ulps(k.cOut, refOut) <= 2, "t = \(c.timestep)")
            #expect(abs(k.cOut - refOut) <= 1.2e-7 * max(abs(refOut), 1e-30), "t = \(c.timestep)")
            worstF32 = max(worstF32, ulps(k.cSkip, refSkip), ulps(k.cOut, refOut))
        }
        print("c_skip/c_out vs torch float32 (tensor timestep): worst \(worstF32) ulp")
        let at999 = s.boundaryScalings(timestep: 999)
        #expect(at999.cSkip < 3e-9 && abs(at999.cOut - 1) < 1e-8)
        #expect(s.boundaryScalings(timestep: 0) == (1, 0))
    }

    @Test func stepsMatchDiffusers() throws {
        var worst: Float = 0
        for chain in fixture.steps {
            let prediction = try #require(PredictionType(rawValue: chain.predictionType))
            let s = try LCMScheduler(config: LCMSchedulerConfig(predictionType: prediction))
            #expect(try s.timesteps(numInferenceSteps: chain.numInferenceSteps) == chain.timesteps)
            for step in chain.steps {
                let label = "\(chain.name) step \(step.stepIndex) t=\(step.timestep)"
                let out = try s.step(modelOutput: step.modelOutput.floats, stepIndex: step.stepIndex,
                                     timesteps: chain.timesteps, sample: step.sample.floats,
                                     noise: step.noise?.floats)
                for (name, got, ref) in [("denoised", out.denoised, step.denoised.floats),
                                         ("prev_sample", out.prevSample, step.prevSample.floats)] {
                    #expect(got.count == 16)
                    for (a, b) in zip(got, ref) {
                        let err = abs(a - b) / max(1, abs(b))
                        worst = max(worst, err)
                        #expect(err <= 1e-6, "\(label) \(name): \(a) vs \(b)")
                    }
                }
                if step.prevTimestep == nil {
                    #expect(out.prevSample == out.denoised, "\(label)")
                }
                // The explicit-previous-timestep form agrees.
                let again = try s.step(modelOutput: step.modelOutput.floats, timestep: step.timestep,
                                       sample: step.sample.floats, previousTimestep: step.prevTimestep,
                                       noise: step.noise?.floats)
                #expect(again == out)
            }
        }
        print("LCM step vs diffusers: worst |Δ|/max(1, |ref|) = \(worst)")
    }

    @Test func stepValidation() throws {
        let s = try LCMScheduler()
        let x = [Float](repeating: 0.5, count: 4)
        #expect(throws: SchedulerError.self) {
            try s.step(modelOutput: x, stepIndex: 0, timesteps: [999, 499], sample: x, noise: nil)
        }
        #expect(throws: SchedulerError.self) {
            try s.step(modelOutput: x, stepIndex: 2, timesteps: [999, 499], sample: x, noise: x)
        }
        #expect(throws: SchedulerError.self) {
            try s.step(modelOutput: [1], timestep: 999, sample: x, previousTimestep: nil, noise: nil)
        }
        #expect(throws: SchedulerError.self) { try s.scalars(timestep: 1000) }
        // A previous timestep below 0 uses final_alpha_cumprod (1 here: no noise added).
        let d = try s.denoised(modelOutput: x, sample: x, scalars: s.scalars(timestep: 259))
        #expect(try s.renoise(denoised: d, noise: x, previousTimestep: -1) == d)
    }

    @Test func addNoiseFormula() throws {
        let ns = try NoiseSchedule()
        let x0: [Float] = [1, -2, 0.5], z: [Float] = [0.3, 0.1, -1]
        let xt = try ns.addNoise(original: x0, noise: z, timestep: 359)
        let a = ns.alphasCumprod[359].squareRoot(), b = (1 - ns.alphasCumprod[359]).squareRoot()
        #expect(xt == zip(x0, z).map { a * $0 + b * $1 })
        #expect(throws: SchedulerError.self) { try ns.addNoise(original: x0, noise: z, timestep: 1000) }
    }
}
