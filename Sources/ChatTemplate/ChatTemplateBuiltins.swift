// Built-in chat templates for `--chat-template NAME`, byte for byte as the models publish them
// (the `chat_template` of their tokenizer_config.json), so a model whose GGUF lacks a template,
// or a user who wants another format, can pick one by name. `\n` inside the Jinja string
// literals is the two-character escape, as in the published templates.
// The golden test renders each against jinja2 (scripts/goldens/chat_templates.py).

extension ChatTemplate {
    /// Names accepted by `builtin(named:)`.
    public static let builtinNames = ["chatml", "llama3", "gemma"]

    /// The source of a built-in template, or nil for an unknown name.
    public static func builtinSource(named name: String) -> String? {
        switch name {
        case "chatml": return chatML
        case "llama3": return llama3
        case "gemma": return gemma
        default: return nil
        }
    }

    /// A built-in template, or nil for an unknown name.
    public static func builtin(named name: String) throws -> ChatTemplate? {
        guard let source = builtinSource(named: name) else { return nil }
        return try ChatTemplate(source: source)
    }

    /// ChatML without a default system prompt (teknium/OpenHermes-2.5-Mistral-7B; also the
    /// default transformers once used). SmolLM2's own template is this plus a default system prompt.
    static let chatML = #"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"#

    /// meta-llama/Meta-Llama-3-8B-Instruct: BOS before the first turn, content trimmed.
    static let llama3 = #"{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"#

    /// google/gemma-7b-it (also gemma-2-*-it): no system role, strictly alternating user/model turns.
    static let gemma = #"{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"#
}
