"""Pins the token ids of the SmolLM2 parity prompts, encoded by Hugging Face
`tokenizers` (pip install tokenizers==0.23.3) from the tokenizer.json that
`runner models import` builds out of SmolLM2-135M-Instruct.Q4_1.gguf:

  runner models import --in "$(scripts/fetch-smollm2.sh)" --out /tmp/smollm2
  python3 make_prompts.py /tmp/smollm2 > smollm2_prompts.json
"""
import json, sys
from tokenizers import Tokenizer

tok = Tokenizer.from_file(sys.argv[1] + "/tokenizer.json")
prompts = [
    ("plain", "The Eiffel Tower is located in the city of"),
    ("chat", "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
             "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"),
    ("code", "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"),
]
out = []
for name, text in prompts:
    ids = tok.encode(text).ids
    assert tok.decode(ids, skip_special_tokens=False) == text
    out.append({"name": name, "text": text, "ids": ids})
json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
print()
