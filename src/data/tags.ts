/**
 * The Planet tag vocabulary, as the competition spelled it (the counts below are those of the
 * real train_v2.csv). The order is alphabetical because that is the label order the model's 17
 * outputs use; keep it so, or every trained model's outputs change meaning.
 */

/** The 17 tags, sorted alphabetically. `artisinal_mine` is the competition's own spelling. */
export const TAGS = [
  'agriculture',
  'artisinal_mine',
  'bare_ground',
  'blooming',
  'blow_down',
  'clear',
  'cloudy',
  'conventional_mine',
  'cultivation',
  'habitation',
  'haze',
  'partly_cloudy',
  'primary',
  'road',
  'selective_logging',
  'slash_burn',
  'water',
] as const;

export type Tag = (typeof TAGS)[number];

/** Every chip has exactly one of these; a `cloudy` chip has no other tag. */
export const WEATHER_TAGS = ['clear', 'cloudy', 'haze', 'partly_cloudy'] as const satisfies readonly Tag[];

export type WeatherTag = (typeof WEATHER_TAGS)[number];

/** Number of chips in the real `train_v2.csv`. */
export const REAL_IMAGE_COUNT = 40_479;

/**
 * How many of the real chips carry each tag. The weather counts add up to 40,478, one short
 * of the image count: the real data has a chip without a weather tag, so readers must not
 * assume the rules hold.
 */
export const REAL_TAG_COUNTS: Readonly<Record<Tag, number>> = {
  primary: 37_513,
  clear: 28_431,
  agriculture: 12_315,
  road: 8_071,
  water: 7_411,
  partly_cloudy: 7_261,
  cultivation: 4_547,
  habitation: 3_660,
  haze: 2_697,
  cloudy: 2_089,
  bare_ground: 862,
  selective_logging: 340,
  artisinal_mine: 339,
  blooming: 332,
  slash_burn: 209,
  blow_down: 101,
  conventional_mine: 100,
};

const TAG_SET: ReadonlySet<string> = new Set(TAGS);
const WEATHER_SET: ReadonlySet<string> = new Set(WEATHER_TAGS);

/** True for one of the 17 tags (exact spelling, case-sensitive, as in the CSV). */
export function isTag(s: string): s is Tag {
  return TAG_SET.has(s);
}

/** True for clear, cloudy, haze and partly_cloudy. */
export function isWeatherTag(s: string): s is WeatherTag {
  return WEATHER_SET.has(s);
}
