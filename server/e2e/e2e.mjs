// End-to-end test of `gptoss serve` with the official openai npm client.
//
//   node e2e.mjs http://127.0.0.1:PORT API_KEY
//
// The server must run with --api-key API_KEY. cmd/gptoss/e2e_test.go starts
// one on a random loopback port (the tiny synthetic model) and runs this.
// Requests stay small (max_tokens <= 16) except where a stream must still be
// running when the client goes away.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, { APIUserAbortError, AuthenticationError, BadRequestError, NotFoundError } from 'openai';

const base = process.argv[2];
const apiKey = process.argv[3];
if (!base || !apiKey) {
  console.error('usage: node e2e.mjs http://HOST:PORT API_KEY');
  process.exit(2);
}

const client = new OpenAI({ baseURL: `${base}/v1`, apiKey, maxRetries: 0, timeout: 60_000 });
let model; // the served model id, from /v1/models

const weather = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};
const time = {
  type: 'function',
  function: {
    name: 'get_time',
    description: 'Current time in a time zone',
    parameters: { type: 'object', properties: { tz: { type: 'string', enum: ['UTC', 'CET'] } } },
  },
};
const toolNames = ['get_weather', 'get_time'];

function greedyChat(content, extra = {}) {
  return { model, messages: [{ role: 'user', content }], max_tokens: 16, temperature: 0, ...extra };
}

// optionalString asserts that a field is absent or a string (the server sets
// reasoning only when the model produced some; random weights rarely do).
function optionalString(obj, key, where) {
  if (obj[key] !== undefined && obj[key] !== null) {
    assert.equal(typeof obj[key], 'string', `${where}.${key} is ${typeof obj[key]}`);
  }
}

// streamChat runs a streaming chat completion and collects what it says.
async function streamChat(params, options) {
  const stream = await client.chat.completions.create({ ...params, stream: true }, options);
  const out = { content: '', reasoning: '', finish: null, usage: null, chunks: 0, calls: [] };
  for await (const chunk of stream) {
    out.chunks++;
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) out.usage = chunk.usage;
    for (const choice of chunk.choices) {
      const d = choice.delta ?? {};
      if (d.content !== undefined && d.content !== null) {
        assert.equal(typeof d.content, 'string');
        out.content += d.content;
      }
      optionalString(d, 'reasoning', 'delta');
      optionalString(d, 'reasoning_content', 'delta');
      if (d.reasoning) out.reasoning += d.reasoning;
      for (const tc of d.tool_calls ?? []) {
        assert.equal(typeof tc.index, 'number', 'tool call delta without index');
        const call = (out.calls[tc.index] ??= { id: '', name: '', arguments: '' });
        if (tc.id) call.id = tc.id;
        if (tc.function?.name) call.name = tc.function.name;
        if (tc.function?.arguments) call.arguments += tc.function.arguments;
      }
      if (choice.finish_reason) out.finish = choice.finish_reason;
    }
  }
  return out;
}

async function metric(name) {
  const res = await fetch(`${base}/metrics`);
  assert.equal(res.status, 200);
  const line = (await res.text()).split('\n').find((l) => l.startsWith(name + ' '));
  assert.ok(line, `/metrics has no ${name}`);
  return Number(line.split(' ')[1]);
}

// waitIdle waits until no sequence runs and no KV cache is held.
async function waitIdle(ms = 5000) {
  const deadline = Date.now() + ms;
  let running, used;
  while (Date.now() < deadline) {
    running = await metric('gptoss_num_requests_running');
    used = await metric('gptoss_kv_cache_used_bytes');
    if (running === 0 && used === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`after ${ms} ms: gptoss_num_requests_running ${running}, gptoss_kv_cache_used_bytes ${used}`);
}

test('models', async () => {
  const page = await client.models.list();
  assert.equal(page.data.length, 1);
  model = page.data[0].id;
  assert.equal(typeof model, 'string');
  assert.equal(page.data[0].object, 'model');
  const card = await client.models.retrieve(model);
  assert.equal(card.id, model);
});

test('chat completion, non-streaming', async () => {
  const r = await client.chat.completions.create(greedyChat('Say hello.'));
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.model, model);
  assert.equal(r.choices.length, 1);
  const c = r.choices[0];
  assert.equal(c.message.role, 'assistant');
  assert.equal(typeof c.message.content, 'string');
  optionalString(c.message, 'reasoning', 'message');
  optionalString(c.message, 'reasoning_content', 'message');
  assert.equal(c.message.reasoning_content, c.message.reasoning);
  assert.ok(['stop', 'length'].includes(c.finish_reason), c.finish_reason);
  assert.ok(r.usage.prompt_tokens > 0);
  assert.ok(r.usage.completion_tokens > 0 && r.usage.completion_tokens <= 16, `${r.usage.completion_tokens} tokens`);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});

test('chat completion, streaming with usage, equals the non-streaming one', async () => {
  const params = greedyChat('Count to three.', { stream_options: { include_usage: true } });
  const s = await streamChat(params);
  const { stream_options, ...plain } = params;
  const r = await client.chat.completions.create(plain);
  assert.ok(s.chunks >= 3, `${s.chunks} chunks`);
  assert.ok(['stop', 'length'].includes(s.finish), s.finish);
  assert.equal(s.content, r.choices[0].message.content);
  assert.equal(s.reasoning, r.choices[0].message.reasoning ?? '');
  assert.equal(s.finish, r.choices[0].finish_reason);
  assert.ok(s.usage, 'no usage chunk with include_usage');
  assert.deepEqual(s.usage, r.usage);
});

test('chat with every role, max_completion_tokens and sampling parameters', async () => {
  const r = await client.chat.completions.create({
    model,
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'developer', content: 'Answer in English.' },
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: '{"temp_c": 21}' },
      { role: 'assistant', content: 'It is 21 °C.', reasoning: 'The tool said 21.' },
      { role: 'user', content: [{ type: 'text', text: 'Thanks!' }] },
    ],
    tools: [weather],
    max_completion_tokens: 8,
    temperature: 0.7,
    top_p: 0.9,
    seed: 42,
    reasoning_effort: 'low',
  });
  assert.ok(r.usage.completion_tokens <= 8);
  assert.ok(['stop', 'length', 'tool_calls'].includes(r.choices[0].finish_reason));
});

for (const stream of [false, true]) {
  test(`tool_choice required${stream ? ', streaming' : ''}: a well-formed call to a listed tool`, async () => {
    const params = greedyChat('What is the weather in Paris?', { tools: [weather, time], tool_choice: 'required' });
    let finish, calls;
    if (stream) {
      const s = await streamChat(params);
      finish = s.finish;
      calls = s.calls;
    } else {
      const r = await client.chat.completions.create(params);
      finish = r.choices[0].finish_reason;
      calls = (r.choices[0].message.tool_calls ?? []).map((c) => {
        assert.equal(c.type, 'function');
        return { id: c.id, name: c.function.name, arguments: c.function.arguments };
      });
    }
    assert.equal(finish, 'tool_calls');
    assert.ok(calls.length >= 1, 'no tool call');
    for (const c of calls) {
      assert.ok(toolNames.includes(c.name), `tool ${c.name}`);
      assert.ok(c.id, 'tool call without id');
      const args = JSON.parse(c.arguments);
      assert.equal(typeof args, 'object');
      assert.ok(args !== null && !Array.isArray(args), `arguments ${c.arguments}`);
    }
  });
}

test('named tool_choice calls that tool', async () => {
  const r = await client.chat.completions.create(
    greedyChat('What time is it?', { tools: [weather, time], tool_choice: { type: 'function', function: { name: 'get_time' } } }),
  );
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
  const calls = r.choices[0].message.tool_calls;
  assert.ok(calls?.length >= 1, 'no tool call');
  for (const c of calls) {
    assert.equal(c.function.name, 'get_time');
    JSON.parse(c.function.arguments);
  }
});

test('completions: string prompt, and streaming equals it', async () => {
  const params = { model, prompt: 'The quick brown fox', max_tokens: 12, temperature: 0 };
  const r = await client.completions.create(params);
  assert.equal(r.object, 'text_completion');
  assert.equal(typeof r.choices[0].text, 'string');
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.completion_tokens <= 12 && r.usage.prompt_tokens > 0);
  const stream = await client.completions.create({ ...params, stream: true });
  let text = '';
  let finish = null;
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      text += c.text ?? '';
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.equal(text, r.choices[0].text);
  assert.equal(finish, r.choices[0].finish_reason);
});

test('responses: string input, streaming events, previous_response_id', async () => {
  const r1 = await client.responses.create({ model, input: 'Hello!', max_output_tokens: 16, temperature: 0 });
  assert.equal(r1.object, 'response');
  assert.ok(['completed', 'incomplete'].includes(r1.status), r1.status);
  assert.equal(typeof r1.output_text, 'string');
  assert.ok(r1.usage.input_tokens > 0 && r1.usage.output_tokens <= 16);

  const stream = await client.responses.create({
    model, input: 'Hello!', max_output_tokens: 16, temperature: 0, instructions: 'Be brief.', stream: true,
  });
  const types = [];
  let delta = '';
  let final;
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === 'response.output_text.delta') delta += ev.delta;
    if (ev.type === 'response.completed' || ev.type === 'response.incomplete') final = ev.response;
  }
  assert.equal(types[0], 'response.created', types.join(','));
  assert.ok(['response.completed', 'response.incomplete'].includes(types.at(-1)), types.join(','));
  assert.ok(final, 'no final response event');
  const finalText = final.output
    .filter((it) => it.type === 'message')
    .flatMap((it) => it.content)
    .filter((p) => p.type === 'output_text')
    .map((p) => p.text)
    .join('');
  assert.equal(delta, finalText);

  const r2 = await client.responses.create({
    model, input: 'And again?', previous_response_id: r1.id, max_output_tokens: 16, temperature: 0,
  });
  assert.equal(r2.previous_response_id, r1.id);
  // The earlier turn is part of the prompt now.
  assert.ok(r2.usage.input_tokens > r1.usage.input_tokens, `${r2.usage.input_tokens} <= ${r1.usage.input_tokens}`);
  await assert.rejects(
    client.responses.create({ model, input: 'x', previous_response_id: 'resp_does_not_exist', max_output_tokens: 4 }),
    NotFoundError,
  );
});

test('logprobs: chat and completions', async () => {
  const r = await client.chat.completions.create(greedyChat('Hi', { max_tokens: 8, logprobs: true, top_logprobs: 2 }));
  const lp = r.choices[0].logprobs;
  assert.ok(lp && Array.isArray(lp.content), 'no logprobs.content');
  for (const t of lp.content) {
    assert.equal(typeof t.token, 'string');
    assert.ok(t.logprob <= 0, `logprob ${t.logprob}`);
    assert.equal(t.top_logprobs.length, 2);
  }
  const c = await client.completions.create({ model, prompt: [13225, 11, 2375], max_tokens: 4, temperature: 0, logprobs: 2 });
  assert.equal(typeof c.choices[0].text, 'string');
  assert.ok(c.choices[0].logprobs, 'no completion logprobs');
  assert.equal(c.choices[0].logprobs.tokens.length, c.usage.completion_tokens);
  assert.equal(c.usage.prompt_tokens, 3);
});

test('responses: function tools with tool_choice required, and store: false', async () => {
  const tools = [weather, time].map((t) => ({ type: 'function', ...t.function }));
  const r = await client.responses.create({
    model, input: 'Weather in Paris?', tools, tool_choice: 'required', max_output_tokens: 16, temperature: 0,
  });
  const calls = r.output.filter((it) => it.type === 'function_call');
  assert.ok(calls.length >= 1, `no function_call item in ${JSON.stringify(r.output)}`);
  for (const c of calls) {
    assert.ok(toolNames.includes(c.name), c.name);
    assert.ok(c.call_id, 'function_call without call_id');
    JSON.parse(c.arguments);
  }
  // The tool's result goes back as an input item after the stored call.
  const r2 = await client.responses.create({
    model, previous_response_id: r.id, tools, max_output_tokens: 8, temperature: 0,
    input: [{ type: 'function_call_output', call_id: calls[0].call_id, output: '{"temp_c": 21}' }],
  });
  assert.ok(['completed', 'incomplete'].includes(r2.status), r2.status);

  const unstored = await client.responses.create({ model, input: 'hi', store: false, max_output_tokens: 4 });
  await assert.rejects(
    client.responses.create({ model, input: 'x', previous_response_id: unstored.id, max_output_tokens: 4 }),
    NotFoundError,
  );
});

// stopAt picks a stop string from the middle of a greedy output and says
// what the output becomes with it.
function stopAt(text) {
  const chars = [...text];
  assert.ok(chars.length >= 8, `output ${JSON.stringify(text)} too short to cut`);
  const stop = chars.slice(4, 7).join('');
  return { stop, want: text.slice(0, text.indexOf(stop)) };
}

test('stop strings: the output ends before them, with finish_reason stop', async () => {
  const chat = greedyChat('Say hello.');
  const full = (await client.chat.completions.create(chat)).choices[0].message.content;
  const c = stopAt(full);
  const r = await client.chat.completions.create({ ...chat, stop: [c.stop] });
  assert.equal(r.choices[0].message.content, c.want);
  assert.equal(r.choices[0].finish_reason, 'stop');
  const s = await streamChat({ ...chat, stop: [c.stop] });
  assert.equal(s.content, c.want);
  assert.equal(s.finish, 'stop');

  const comp = { model, prompt: 'The quick brown fox', max_tokens: 12, temperature: 0 };
  const text = (await client.completions.create(comp)).choices[0].text;
  const k = stopAt(text);
  const rc = await client.completions.create({ ...comp, stop: k.stop });
  assert.equal(rc.choices[0].text, k.want);
  assert.equal(rc.choices[0].finish_reason, 'stop');
});

test('a seed makes sampling reproducible', async () => {
  const params = greedyChat('Pick a word.', { temperature: 1, seed: 1234 });
  const [a, b] = await Promise.all([client.chat.completions.create(params), client.chat.completions.create(params)]);
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
});

test('errors', async () => {
  await assert.rejects(
    client.chat.completions.create({ ...greedyChat('hi'), model: 'no-such-model' }),
    (e) => e instanceof NotFoundError && e.status === 404,
  );
  const bad = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'wrong-key', maxRetries: 0 });
  await assert.rejects(bad.chat.completions.create(greedyChat('hi')), AuthenticationError);
  await assert.rejects(bad.models.list(), AuthenticationError);
  await assert.rejects(
    client.chat.completions.create(greedyChat('hi', { n: 2 })),
    (e) => e instanceof BadRequestError && e.status === 400 && typeof e.message === 'string',
  );
  await assert.rejects(client.chat.completions.create({ model, messages: [], max_tokens: 4 }), BadRequestError);
  // Beyond --max-model-len.
  await assert.rejects(client.chat.completions.create(greedyChat('hi', { max_tokens: 1_000_000 })), BadRequestError);
  await assert.rejects(client.models.retrieve('no-such-model'), NotFoundError);
  await assert.rejects(
    client.chat.completions.create(greedyChat('hi', { temperature: 'hot' })),
    BadRequestError,
  );
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
    body: '{"model": ',
  });
  assert.equal(res.status, 400);
  const body = await res.json();
  assert.equal(typeof body.error?.message, 'string');
  assert.ok('type' in body.error && 'param' in body.error && 'code' in body.error, JSON.stringify(body));
});

test('32 concurrent streams complete, and greedy output is batch-invariant', async () => {
  const prompt = 'Tell me about batching.';
  const alone = await streamChat(greedyChat(prompt));
  // Half the same prompt, half different ones, so the batch is mixed.
  const jobs = Array.from({ length: 32 }, (_, i) =>
    streamChat(greedyChat(i % 2 === 0 ? prompt : `Question number ${i}?`)),
  );
  const results = await Promise.all(jobs);
  for (const [i, r] of results.entries()) {
    assert.ok(r.finish, `stream ${i} has no finish_reason`);
    if (i % 2 === 0) {
      assert.equal(r.content, alone.content, `stream ${i} differs from the same request alone`);
      assert.equal(r.reasoning, alone.reasoning, `stream ${i}: reasoning differs`);
      assert.equal(r.finish, alone.finish);
    }
  }
  await waitIdle();
});

test('a client that disconnects mid-stream frees its sequence', async () => {
  const ac = new AbortController();
  let chunks = 0;
  let finish = null;
  // Long enough to still be running when the client goes away.
  const stream = await client.chat.completions.create(
    { model, messages: [{ role: 'user', content: 'Write a long essay.' }], max_tokens: 2000, stream: true },
    { signal: ac.signal },
  );
  try {
    for await (const chunk of stream) {
      chunks++;
      finish ??= chunk.choices[0]?.finish_reason;
      if (chunks === 3) {
        ac.abort();
        break; // chunks already buffered would still be delivered
      }
    }
  } catch (e) {
    // The SDK ends the iteration quietly on abort; some versions throw.
    if (!(e instanceof APIUserAbortError || e.name === 'AbortError')) throw e;
  }
  assert.equal(finish, null, 'the stream finished before the abort: nothing was tested');
  const health = await fetch(`${base}/health`);
  assert.equal(health.status, 200);
  await waitIdle();
  // And it still serves.
  const r = await client.chat.completions.create(greedyChat('Still there?', { max_tokens: 4 }));
  assert.ok(r.usage.completion_tokens <= 4);
});
