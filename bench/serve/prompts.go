package serve

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"unicode/utf8"

	"github.com/gptoss/gptoss/tokenizer"
)

// InteractivePrompt is the interactive suite's prompt: about 105 tokens
// with o200k_harmony, the length of the published batch-1 measurement.
const InteractivePrompt = `You are helping a small bakery plan its week. The bakery opens six days a week, ` +
	`sells bread, croissants and seasonal pies, and has two ovens that each hold twelve trays. ` +
	`Bread needs forty minutes, croissants twenty-five and pies fifty. Saturday sales are usually ` +
	`double those of a weekday, and Monday is the quietest day. Write a clear baking schedule for ` +
	`the week, explain how you balanced the ovens, and list three ways the owner could cut waste ` +
	`without disappointing regular customers. Keep the answer practical and short.`

// scenarioCategories lists the task categories in report order.
func scenarioCategories() []string {
	return []string{"coding", "reading comprehension", "commonsense reasoning", "math", "creative writing"}
}

// scenarioPrompts returns the scenarios suite's prompts: five task
// categories, five prompts each. A function, not a package variable, so
// nothing can change them between runs.
func scenarioPrompts() map[string][]string {
	return map[string][]string{
		"coding": {
			"Write a Go function that merges two sorted slices of integers into one sorted slice without using the sort package, and explain its running time.",
			"Explain what a race condition is, then show a small Python program that has one and a corrected version that uses a lock.",
			"Write a SQL query that returns, for each customer, the total amount of their orders in 2023 and the date of their most recent order. Tables: customers(id, name), orders(id, customer_id, amount, created_at).",
			"Review this JavaScript and list every bug you find: function avg(xs) { let s; for (i = 0; i <= xs.length; i++) s += xs[i]; return s / xs.length }",
			"Implement an LRU cache class in Rust with get and put methods that run in constant time, and describe the data structures you chose.",
		},
		"reading comprehension": {
			"Read the passage and answer the question. Passage: The town built its library in 1902 with money from a local mill owner. It burned in 1931 and was rebuilt in stone two years later, this time with a reading room for children. Question: Why might the second library have been built in stone, and what changed for children?",
			"Passage: Mara missed the last train, so she walked the six kilometres home along the river, arriving after midnight to find her brother still waiting up with soup. Question: What can you infer about the relationship between Mara and her brother? Quote the text that supports your answer.",
			"Summarise the following in two sentences, then give it a title: Honeybees communicate the location of food with a waggle dance. The angle of the dance relative to vertical shows the direction relative to the sun, and the length of the waggle run shows the distance.",
			"Passage: The committee approved the bridge on the condition that construction would not begin until the spring floods had passed and an environmental survey was complete. Question: List the conditions placed on the bridge and say which one depends on the season.",
			"Read this product review and state whether it is positive, negative or mixed, with reasons: 'The battery lasts all week and the screen is lovely, but the strap broke within a month and support never replied.'",
		},
		"commonsense reasoning": {
			"If you put a metal spoon and a wooden spoon in a pot of boiling soup for five minutes, which handle will be hotter to touch and why?",
			"A person leaves their house at 8am carrying an umbrella even though the sky is clear. Give three plausible reasons why.",
			"Why do people usually whisper in libraries, and in what situations would it be acceptable to speak at a normal volume there?",
			"You have a glass of water with ice cubes floating in it, filled to the brim. When the ice melts, does the water overflow? Explain.",
			"Which would be easier to carry up a flight of stairs: a box of feathers weighing ten kilograms or a box of bricks weighing ten kilograms? Think about size and shape, not only weight.",
		},
		"math": {
			"A train travels 180 kilometres in 2 hours and 15 minutes. What is its average speed in kilometres per hour? Show your steps.",
			"Solve for x and check your answer: 3(x - 4) + 2 = 5x - 14.",
			"A shop lowers a price by 20 percent and later raises the new price by 20 percent. Is the final price higher, lower or the same as the original? By what percentage?",
			"How many different ways can 5 books be arranged on a shelf if two particular books must always stand next to each other?",
			"Prove that the sum of the first n odd numbers equals n squared.",
		},
		"creative writing": {
			"Write a short story of about three hundred words about a lighthouse keeper who finds a message in a bottle addressed to them.",
			"Write a poem of four stanzas about the first snowfall in a busy city, using at least one metaphor in each stanza.",
			"Describe an ordinary kitchen from the point of view of a cat who believes it owns the house.",
			"Write the opening paragraph of a mystery novel set on a night train crossing the mountains.",
			"Write a letter from a tree to the child who planted it fifty years ago.",
		},
	}
}

// ScenarioPrompts returns the 25 scenario prompts in category order,
// each counted with tok.
func ScenarioPrompts(tok *tokenizer.Tokenizer) []Prompt {
	all := scenarioPrompts()
	var out []Prompt
	for _, cat := range scenarioCategories() {
		for _, text := range all[cat] {
			out = append(out, TextPrompt(tok, text, cat))
		}
	}
	return out
}

// TextPrompt wraps a fixed text, counting its tokens.
func TextPrompt(tok *tokenizer.Tokenizer, text, category string) Prompt {
	return Prompt{Text: text, Category: category, Tokens: len(tok.Encode(text))}
}

// RandomPrompts returns n prompts of exactly inputLen tokens each (as our
// tokenizer encodes them), made of random ordinary tokens: no two share a
// prefix, so a server's prefix cache cannot shortcut the prefill.
func RandomPrompts(tok *tokenizer.Tokenizer, n, inputLen int, seed uint64) ([]Prompt, error) {
	if inputLen <= 0 {
		return nil, fmt.Errorf("random prompts: input length must be at least 1, got %d", inputLen)
	}
	rng := rand.New(rand.NewPCG(seed, 0x5851f42d4c957f2d))
	out := make([]Prompt, n)
	for i := range out {
		text, got := randomText(tok, rng, inputLen)
		if got != inputLen {
			return nil, fmt.Errorf("random prompts: could not build a %d-token prompt (best %d)", inputLen, got)
		}
		out[i] = Prompt{Text: text, Tokens: got}
	}
	return out, nil
}

// randomText decodes random token ids to text and adjusts until the text
// re-encodes to exactly want tokens. Decoding then encoding is not the
// identity (adjacent tokens can merge, byte fragments become U+FFFD), so
// it trims or extends and tries again.
func randomText(tok *tokenizer.Tokenizer, rng *rand.Rand, want int) (string, int) {
	ids := make([]int, 0, want)
	best, bestLen := "", -1
	for range 64 {
		for len(ids) < want {
			ids = append(ids, randomTokenID(tok, rng))
		}
		text := tok.Decode(ids[:want])
		enc := tok.Encode(text)
		if len(enc) == want {
			return text, want
		}
		if bestLen < 0 || abs(len(enc)-want) < abs(bestLen-want) {
			best, bestLen = text, len(enc)
		}
		if len(enc) > want {
			ids = enc[:want]
		} else {
			ids = enc
		}
	}
	return best, bestLen
}

// randomTokenID picks an ordinary token that decodes to printable,
// whole UTF-8 text, so that the prompt survives a decode/encode round
// trip and JSON.
func randomTokenID(tok *tokenizer.Tokenizer, rng *rand.Rand) int {
	for {
		id := rng.IntN(tokenizer.NumRanks)
		s, ok := tok.TokenString(id)
		if !ok || !utf8.ValidString(s) || !strings.ContainsFunc(s, isVisible) || strings.ContainsRune(s, utf8.RuneError) || tok.IsSpecial(id) {
			continue
		}
		return id
	}
}

func isVisible(r rune) bool { return r > ' ' && r != 0x7f }

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
