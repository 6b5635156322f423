import Foundation
import Testing
@testable import ModelFiles

@Suite struct ConfigTests {
    @Test func presetsDecodeAndResolveTheHeadCountQuirk() throws {
        // SD 1.5 writes attention_head_dim: 8 meaning 8 heads at every level (head dims 40…160);
        // SD 2.x writes [5, 10, 20, 20], i.e. head dim 64 everywhere.
        #expect(try UNetConfig.sd15.headsPerLevel() == [8, 8, 8, 8])
        #expect(try UNetConfig.sd21.headsPerLevel() == [5, 10, 20, 20])
        #expect(UNetConfig.sdTurbo == UNetConfig.sd21)
        #expect(UNetConfig.sd21.useLinearProjection && !UNetConfig.sd15.useLinearProjection)
        try UNetConfig.sd15.validate()
        try UNetConfig.sd21.validate()
        #expect(CLIPTextConfig.sd15.hiddenAct == "quick_gelu" && CLIPTextConfig.sd21.numHiddenLayers == 23)
        try CLIPTextConfig.sd21.validate()
        #expect(AutoencoderKLConfig.sd.scalingFactor == 0.18215)
        #expect(AutoencoderTinyConfig.taesd.numEncoderBlocks == [1, 3, 3, 3])
        try AutoencoderTinyConfig.taesd.validate()
    }

    @Test func unknownKeysAreIgnoredAndDefaultsApply() throws {
        let config = try UNetConfig.json("""
        {"_class_name": "UNet2DConditionModel", "_diffusers_version": "0.39.0", "some_future_key": [1, 2],
         "block_out_channels": [32, 64], "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
         "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "cross_attention_dim": 32}
        """)
        #expect(config.layersPerBlock == 2 && config.normNumGroups == 32 && config.normEps == 1e-5)
        #expect(try config.headsPerLevel() == [8, 8])
    }

    @Test func missingRequiredKeysAndBadTypesAreNamed() throws {
        #expect(throws: ModelFilesError.badConfig(path: "<preset>", reason: "missing required key 'cross_attention_dim'")) {
            try UNetConfig.json("""
            {"block_out_channels": [32], "down_block_types": ["DownBlock2D"], "up_block_types": ["UpBlock2D"]}
            """)
        }
        do {
            _ = try CLIPTextConfig.json(#"{"vocab_size": "many", "hidden_size": 8}"#)
            Issue.record("expected an error")
        } catch let ModelFilesError.badConfig(_, reason) {
            #expect(reason.contains("vocab_size"))
        }
        #expect(throws: ModelFilesError.self) { try UNetConfig.json("not json") }
    }

    @Test func unsupportedArchitecturesAreRejectedWithTheirKey() throws {
        var config = UNetConfig.sd21
        config.addEmbeddingType = "text_time"
        #expect(throws: ConfigError.self) { try config.validate() }
        config = UNetConfig.sd15
        config.attentionHeadDim = .list([8, 8])
        #expect(throws: ConfigError.self) { try config.validate() }
    }
}
